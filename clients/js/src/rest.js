// The auth role's REST API (docs/auth.md): register, log in, refresh, log out, characters, classes.

import { HTTP_FAILED, RequestError } from "./errors.js";

function url(httpBase, path) {
  // "" (or "/") is the page's own origin: the browser resolves "/v1/...".
  const base = (httpBase || "").replace(/\/+$/, "");
  return base + path;
}

/**
 * One JSON call.  @return the parsed answer body.
 * @throws RequestError with the API's error `code`, `message`, `fields`,
 *   `retryAfter` and the HTTP `status`; `client.http_failed` when no answer came.
 */
export async function call(method, httpBase, path, { body, token } = {}) {
  const headers = { accept: "application/json" };
  const init = { method, headers };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url(httpBase, path), init);
  } catch (e) {
    throw new RequestError({ code: HTTP_FAILED, message: String(e && e.message || e) });
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const error = (parsed && typeof parsed.error === "object" && parsed.error) || {};
    const retry = response.headers.get("retry-after");
    throw new RequestError({
      code: error.code || `http.${response.status}`,
      message: error.message || text.slice(0, 200),
      fields: error.fields,
      retry_after: error.retry_after ?? (retry !== null && retry !== "" ? Number(retry) : undefined),
    }, response.status);
  }
  return parsed;
}

/**
 * Register an account (`POST /v1/accounts`).
 * @return {Promise<{account_id: number, username: string}>}
 */
export function register(httpBase, username, password, email) {
  const body = { username, password };
  if (email) body.email = email;
  return call("POST", httpBase, "/v1/accounts", { body });
}

/**
 * Log in (`POST /v1/sessions`).
 * @return the answer: `access_token`, `refresh_token`, `account_id`,
 *   `session_id`, `expires_in`, `directory` (role -> processes with their
 *   `websocket`, `tcp` and `http` addresses, least loaded first)...
 */
export function login(httpBase, username, password) {
  return call("POST", httpBase, "/v1/sessions", { body: { username, password } });
}

/**
 * New tokens for a refresh token (`POST /v1/sessions/refresh`); the refresh
 * token rotates: keep the one in the answer.
 */
export function refresh(httpBase, refreshToken) {
  return call("POST", httpBase, "/v1/sessions/refresh", { body: { refresh_token: refreshToken } });
}

/**
 * Log out this login (`DELETE /v1/sessions`): its tokens stop working and
 * its live sessions end with `auth.revoked`.  @return `{ended}`.
 */
export function logout(httpBase, accessToken) {
  return call("DELETE", httpBase, "/v1/sessions", { token: accessToken });
}

/** The logged-in account (`GET /v1/accounts/me`). */
export function me(httpBase, accessToken) {
  return call("GET", httpBase, "/v1/accounts/me", { token: accessToken });
}

/** The character classes and the start zone (`GET /v1/classes`): `{classes, start_zone}`. */
export function classes(httpBase) {
  return call("GET", httpBase, "/v1/classes");
}

/** This account's characters (`GET /v1/characters`): `{characters, limit}`. */
export function characters(httpBase, accessToken) {
  return call("GET", httpBase, "/v1/characters", { token: accessToken });
}

/**
 * Create a character (`POST /v1/characters`).
 * @param {{name: string, cls?: string, class?: string}} character `cls` (or `class`): a class id.
 * @return the character: `{id, name, class, level, exp, zone, position, created_at}`.
 */
export function createCharacter(httpBase, accessToken, character) {
  const cls = character.cls !== undefined ? character.cls : character.class;
  return call("POST", httpBase, "/v1/characters", {
    token: accessToken,
    body: { name: character.name, class: cls },
  });
}

/** Delete a character (soft; `DELETE /v1/characters/{id}`): `{deleted, name_free_at}`. */
export function deleteCharacter(httpBase, accessToken, characterId) {
  return call("DELETE", httpBase, `/v1/characters/${encodeURIComponent(characterId)}`, {
    token: accessToken,
  });
}

// The admin site's JSON API as the console calls it: same origin, the
// operator's cookie (or a pasted token) with every request, typed errors.

const TOKEN_KEY = "mmoshard.console.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

// Called with the error when the site answers 401: the console shows its login.
let onUnauthorized = () => {};

export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export function pastedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setPastedToken(token) {
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
  }
}

// One request; resolves with the parsed body, or rejects with an ApiError.
export async function api(method, path, body) {
  const headers = {};
  const token = pastedToken();
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let parsed = null;
  const text = await response.text();
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      parsed = { error: { code: `http.${response.status}`, message: text.slice(0, 200) } };
    }
  }
  if (!response.ok) {
    const error = (parsed && parsed.error) || { code: `http.${response.status}`, message: "" };
    const failure = new ApiError(response.status, error.code, error.message);
    if (response.status === 401) {
      onUnauthorized(failure);
    }
    throw failure;
  }
  return parsed;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body || {});

// The operator's login: sets the HttpOnly cookie the site then reads.
export async function login(username, password) {
  setPastedToken(null);
  return post("/operator/session", { username, password });
}

export async function logout() {
  try {
    await api("DELETE", "/operator/session", {});
  } finally {
    setPastedToken(null);
  }
}

// The login and character screens: register, log in, list, create and pick a character (the auth role's REST API).

import { register, login, logout, characters, createCharacter, classes } from "/lib/mmoshard-client.js";
import { $, el, show, status, describeError } from "./dom.js";

export class AccountScreens {
  constructor(app) {
    this.app = app;
    this.classList = [];
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.logIn();
    });
    $("register-button").addEventListener("click", () => this.register());
    $("create-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    $("create-class").addEventListener("change", () => this.describeClass());
    $("logout-button").addEventListener("click", () => this.logOut());
  }

  credentials() {
    return { name: $("login-name").value.trim(), password: $("login-password").value };
  }

  async register() {
    const { name, password } = this.credentials();
    const email = $("login-email").value.trim() || undefined;
    const line = $("login-status");
    if (!name || !password) return status(line, "Choose a name and a password first.", true);
    status(line, "Registering…");
    try {
      await register(this.app.httpBase, name, password, email);
    } catch (error) {
      return status(line, `Could not register: ${describeError(error)}`, true);
    }
    status(line, `Account ${name} registered; logging in…`);
    await this.logIn();
  }

  async logIn() {
    const { name, password } = this.credentials();
    const line = $("login-status");
    status(line, "Logging in…");
    let tokens;
    try {
      tokens = await login(this.app.httpBase, name, password);
    } catch (error) {
      return status(line, `Could not log in: ${describeError(error)}`, true);
    }
    status(line, "");
    $("login-password").value = "";
    this.app.loggedIn(tokens);
    await this.showCharacters();
  }

  async logOut() {
    const tokens = this.app.state.tokens;
    this.app.loggedOut();
    if (tokens) {
      try {
        await logout(this.app.httpBase, tokens.access_token);
      } catch (error) {
        // The login ends when its tokens expire anyway.
      }
    }
  }

  /** Show the character screen: the account's characters and the create form. */
  async showCharacters() {
    const app = this.app;
    app.showScreen("characters");
    $("account-name").textContent = app.state.account.username;
    const line = $("characters-status");
    try {
      const [listing, known] = await Promise.all([
        characters(app.httpBase, await app.accessToken()),
        this.classList.length ? { classes: this.classList } : classes(app.httpBase),
      ]);
      this.classList = known.classes || [];
      app.state.characters = listing.characters || [];
    } catch (error) {
      return status(line, `Could not list characters: ${describeError(error)}`, true);
    }
    this.fillClasses();
    this.fillCharacters();
  }

  fillClasses() {
    const select = $("create-class");
    if (select.options.length) return;
    for (const c of this.classList) {
      select.append(el("option", { value: c.id }, `${c.name} (${c.role})`));
    }
    this.describeClass();
  }

  describeClass() {
    const chosen = this.classList.find((c) => c.id === $("create-class").value);
    $("create-class-description").textContent = chosen ? chosen.description : "";
  }

  fillCharacters() {
    const list = $("character-list");
    list.replaceChildren();
    const all = this.app.state.characters;
    show($("characters-empty"), all.length === 0);
    for (const c of all) {
      const play = el("button", { type: "button", className: "play", dataset: { character: c.name },
        onclick: () => this.play(c) }, "Play");
      list.append(el("li", { dataset: { characterId: String(c.id) } },
        el("span", { className: "grow" }, el("strong", {}, c.name), ` level ${c.level} ${c.class}`,
          el("span", { className: "hint" }, ` — ${c.zone || "new"}`)),
        play));
    }
  }

  async create() {
    const app = this.app;
    const name = $("create-name").value.trim();
    const cls = $("create-class").value;
    const line = $("characters-status");
    status(line, "Creating…");
    try {
      const made = await createCharacter(app.httpBase, await app.accessToken(), { name, cls });
      app.state.characters.push(made);
    } catch (error) {
      return status(line, `Could not create ${name}: ${describeError(error)}`, true);
    }
    $("create-name").value = "";
    status(line, `${name} is ready.`);
    this.fillCharacters();
  }

  async play(character) {
    const line = $("characters-status");
    status(line, `Entering the world as ${character.name}…`);
    try {
      await this.app.enterGame(character);
      status(line, "");
    } catch (error) {
      status(line, `Could not enter the world: ${describeError(error)}`, true);
    }
  }
}

// The sign-in form (there is no signup: admins create users).
import { logIn } from "../client";
import { h } from "../dom";
import type { Profile } from "../gen/aiorch/auth/v1/profiles_pb";
import { notifyError } from "../notice";

/** A form that signs in and hands the profile to `onSignedIn`. */
export function loginView(onSignedIn: (profile: Profile) => void): HTMLElement {
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h(
    "form",
    { class: "card login" },
    h("h2", {}, "Log in"),
    h("label", { for: "username" }, "Username"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    submit,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit.disabled = true;
    logIn(username.value, password.value)
      .then(onSignedIn)
      .catch(notifyError)
      .finally(() => {
        submit.disabled = false;
      });
  });
  return form;
}

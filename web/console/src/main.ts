// Boots the console: the sign-in form, or the console for a stored session.
import "./style.css";
import { jobs, logOut, profiles, projects, results, session } from "./client";
import { h, replace } from "./dom";
import type { Profile } from "./gen/aiorch/auth/v1/profiles_pb";
import { clearNotice, mountNotice, notify, notifyError } from "./notice";
import { ConsoleView } from "./views/console";
import { loginView } from "./views/login";

const root = document.getElementById("app") as HTMLElement;
const page = h("div", {});
root.append(page);
mountNotice(root);

// The console's own clients, for trying calls from the browser's devtools; their failures show in the
// message bar like any other.
Object.assign(window, { aiorch: { profiles, projects, jobs, results } });
window.addEventListener("unhandledrejection", (event) => notifyError(event.reason));

// The console on screen, whose streams must end when it goes.
let current: ConsoleView | null = null;

function showLogin(): void {
  current?.close();
  current = null;
  replace(page, loginView(showConsole));
}

function showConsole(profile: Profile): void {
  clearNotice();
  const view = new ConsoleView(profile, () => {
    void logOut().then(() => {
      showLogin();
      notify("Logged out.");
    });
  });
  current = view;
  replace(page, view.element);
}

session.onExpired(() => {
  showLogin();
  notify("Your session has expired. Please log in again.", "error");
});

if (session.active) {
  profiles
    .getProfile({ id: "me" })
    .then(showConsole)
    .catch((error: unknown) => {
      showLogin();
      notifyError(error);
    });
} else {
  showLogin();
}

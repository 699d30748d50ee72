// The one message bar: server errors, expired sessions and confirmations all land here.
import { describeError } from "./errors";

let bar: HTMLElement | null = null;

/** Puts the bar into the page (once). */
export function mountNotice(parent: HTMLElement): void {
  bar = document.createElement("div");
  bar.id = "notice";
  bar.setAttribute("role", "alert");
  bar.hidden = true;
  parent.prepend(bar);
}

/** Shows a message; errors in red. */
export function notify(text: string, kind: "error" | "info" = "info"): void {
  if (!bar) return;
  bar.textContent = text;
  bar.className = kind;
  bar.hidden = false;
}

/** Shows what went wrong in a call. */
export function notifyError(error: unknown): void {
  notify(describeError(error), "error");
}

/** Hides the bar. */
export function clearNotice(): void {
  if (bar) bar.hidden = true;
}

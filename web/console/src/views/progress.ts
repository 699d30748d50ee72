// A progress bar that screen readers and tests can read (aria-valuenow is the percentage).
import { h } from "../dom";

/** A bar at `value` percent. */
export function progressBar(value: number, label: string): HTMLElement {
  const fill = h("div", { class: "fill" });
  const bar = h("div", { class: "progress", role: "progressbar", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": 100 }, fill);
  setProgress(bar, value);
  return bar;
}

/** Moves the bar. */
export function setProgress(bar: HTMLElement, value: number): void {
  bar.setAttribute("aria-valuenow", String(value));
  const fill = bar.firstElementChild as HTMLElement;
  fill.style.width = `${value}%`;
  fill.textContent = `${value} %`;
}

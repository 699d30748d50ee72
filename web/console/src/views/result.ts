// What a finished job left behind: a player for audio or video, the transcript of speech-to-text, and a
// download link for every output file.
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { downloadResult } from "../client";
import { append, h } from "../dom";
import type { JobResult } from "../gen/aiorch/jobs/v1/results_pb";
import { notifyError } from "../notice";

const AUDIO = /\.(wav|mp3|ogg|opus|flac)$/i;
const VIDEO = /\.(mp4|webm|mov)$/i;

/** The result's files, player and transcript. Object URLs are revoked when `signal` aborts. */
export function resultView(result: JobResult, signal: AbortSignal): HTMLElement {
  const section = h("section", { class: "result", "aria-label": "Result" }, h("h3", {}, "Result"));
  const main = result.resultFile;
  if (AUDIO.test(main)) append(section, mediaPlayer("audio", result, main, signal));
  else if (VIDEO.test(main)) append(section, mediaPlayer("video", result, main, signal));
  const transcript = transcriptView(result.meta);
  if (transcript) append(section, transcript);
  append(section, factsView(result.meta));
  append(
    section,
    h("ul", { class: "files" }, ...result.files.map((file) => h("li", {}, downloadLink(result.id, file, signal)))),
  );
  return section;
}

function mediaPlayer(kind: "audio" | "video", result: JobResult, file: string, signal: AbortSignal): HTMLElement {
  const player = h(kind, { controls: true, preload: "metadata", "aria-label": `${kind} of ${file}` });
  downloadResult(result.id, file)
    .then((blob) => {
      if (signal.aborted) return;
      const url = URL.createObjectURL(blob);
      signal.addEventListener("abort", () => URL.revokeObjectURL(url));
      player.src = url;
    })
    .catch(notifyError);
  return player;
}

function downloadLink(resultId: string, file: string, signal: AbortSignal): HTMLElement {
  const link = h("a", { href: "#", class: "download" }, `Download ${file}`);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    downloadResult(resultId, file)
      .then((blob) => {
        const url = URL.createObjectURL(blob);
        signal.addEventListener("abort", () => URL.revokeObjectURL(url));
        const save = h("a", { href: url, download: file });
        save.click();
      })
      .catch(notifyError);
  });
  return link;
}

function transcriptView(meta: JsonObject | undefined): HTMLElement | null {
  const segments = meta?.["segments"];
  if (!Array.isArray(segments)) return null;
  const rows = segments.filter(isObject).map((segment) =>
    h(
      "tr",
      {},
      h("td", { class: "time" }, seconds(segment["start"])),
      h("td", { class: "time" }, seconds(segment["end"])),
      h("td", {}, String(segment["text"] ?? "")),
    ),
  );
  return h(
    "figure",
    { class: "transcript", "aria-label": "Transcript" },
    h("figcaption", {}, "Transcript"),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "from"), h("th", {}, "to"), h("th", {}, "text"))), h("tbody", {}, ...rows)),
  );
}

function factsView(meta: JsonObject | undefined): HTMLElement {
  const facts = Object.entries(meta ?? {}).filter(([, value]) => typeof value !== "object" && !(typeof value === "string" && value.length > 80));
  return h("dl", { class: "facts" }, ...facts.flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, String(value))]));
}

function isObject(value: JsonValue): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function seconds(value: JsonValue | undefined): string {
  return typeof value === "number" ? `${value.toFixed(2)} s` : "";
}

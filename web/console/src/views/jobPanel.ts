// One job, live: its state, a progress bar and a log tail fed by the WatchJob gRPC-web server stream (no
// polling), cancel, and the result once it has completed.
import { jobs } from "../client";
import { append, h, replace } from "../dom";
import type { Job, JobUpdate } from "../gen/aiorch/jobs/v1/jobs_pb";
import { JobState } from "../gen/aiorch/jobs/v1/types_pb";
import { isFinal, stateName, typeName, when } from "../format";
import { notify, notifyError } from "../notice";
import { follow } from "../streams";
import { progressBar, setProgress } from "./progress";
import { resultView } from "./result";

const LOG_TAIL_LINES = 200;

export class JobPanel {
  readonly element: HTMLElement;
  private readonly closed = new AbortController();
  private readonly heading = h("h3", {});
  private readonly status = h("p", { class: "status", "aria-live": "polite" });
  private readonly bar = progressBar(0, "Job progress");
  private readonly log = h("pre", { class: "log", "aria-label": "Log" });
  private readonly actions = h("div", { class: "actions" });
  private readonly result = h("div", {});
  private lines: string[] = [];
  private version = -1n;
  private resultShown = false;

  constructor(
    private job: Job,
    private readonly canWrite: boolean,
    private readonly onChange: (job: Job) => void,
  ) {
    this.element = h(
      "section",
      { class: "card job-panel", "aria-label": "Job", "data-job-id": job.id },
      this.heading,
      this.status,
      this.bar,
      this.actions,
      h("details", { open: true }, h("summary", {}, "Log"), this.log),
      this.result,
    );
    this.render();
    void this.watch();
  }

  /** Stops the stream and frees the result's object URLs. */
  close(): void {
    this.closed.abort();
  }

  private async watch(): Promise<void> {
    const signal = this.closed.signal;
    const error = await follow(() => jobs.watchJob({ id: this.job.id }, { signal }), signal, (update) => this.apply(update));
    if (error) notifyError(error);
  }

  private apply(update: JobUpdate): void {
    // Updates carry an increasing version; an older one (a late duplicate) never moves the view back.
    if (!update.job || update.version <= this.version) return;
    this.version = update.version;
    this.job = update.job;
    this.lines = [...this.lines, ...update.logLines].slice(-LOG_TAIL_LINES);
    this.render();
    this.onChange(this.job);
  }

  private render(): void {
    const job = this.job;
    this.heading.textContent = `${job.name || "(unnamed)"} · ${typeName(job.type)}`;
    const detail = job.status === JobState.FAILED || job.status === JobState.CANCELLED ? job.error : job.message;
    this.status.textContent = `${stateName(job.status)}${detail ? ` — ${detail}` : ""}`;
    this.status.dataset["state"] = stateName(job.status);
    setProgress(this.bar, job.progress);
    this.log.textContent = this.lines.join("\n");
    this.log.scrollTop = this.log.scrollHeight;
    replace(
      this.actions,
      h("span", { class: "muted" }, `created ${when(job.createdAt)}`, job.finishedAt ? `, finished ${when(job.finishedAt)}` : ""),
      this.canWrite && !isFinal(job.status) ? h("button", { type: "button", class: "danger", onclick: () => this.cancel() }, "Cancel job") : null,
    );
    if (job.status === JobState.COMPLETED && !this.resultShown) {
      this.resultShown = true;
      jobs
        .getResultForJob({ id: job.id })
        .then((result) => append(this.result, resultView(result, this.closed.signal)))
        .catch(notifyError);
    }
  }

  private cancel(): void {
    jobs
      .cancelJob({ id: this.job.id })
      .then(() => notify("Cancel requested."))
      .catch(notifyError);
  }
}

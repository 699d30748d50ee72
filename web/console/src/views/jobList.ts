// One project's jobs: filters, a page-by-page list, and rows kept live by the WatchJobs server stream.
import { jobs } from "../client";
import { append, h, replace } from "../dom";
import { describeError } from "../errors";
import type { Job } from "../gen/aiorch/jobs/v1/jobs_pb";
import { JobState, JobType } from "../gen/aiorch/jobs/v1/types_pb";
import type { Project } from "../gen/aiorch/projects/v1/projects_pb";
import { stateName, typeName, when } from "../format";
import { JOB_TYPES } from "../jobTypes";
import { notify, notifyError } from "../notice";
import { follow } from "../streams";
import { progressBar, setProgress } from "./progress";

const PAGE_SIZE = 50;
const STATES = [JobState.PENDING, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED];

export class JobList {
  readonly element: HTMLElement;
  private readonly rows = new Map<string, HTMLTableRowElement>();
  private readonly live = new AbortController();
  private readonly type = h(
    "select",
    { id: "filter-type", name: "type" },
    h("option", { value: JobType.JOB_TYPE_UNSPECIFIED }, "any type"),
    ...JOB_TYPES.map((spec) => h("option", { value: spec.type }, typeName(spec.type))),
  );
  private readonly status = h(
    "select",
    { id: "filter-status", name: "status" },
    h("option", { value: JobState.JOB_STATE_UNSPECIFIED }, "any state"),
    ...STATES.map((state) => h("option", { value: state }, stateName(state))),
  );
  private readonly search = h("input", { id: "filter-search", name: "search", type: "search", placeholder: "Name contains" });
  private readonly table = h("tbody", {});
  private readonly more = h("button", { type: "button", hidden: true }, "Load more");
  private pageToken = "";

  constructor(
    private readonly project: Project,
    private readonly onOpen: (job: Job) => void,
  ) {
    const filters = h(
      "form",
      { class: "filters", "aria-label": "Job filters" },
      h("label", { for: "filter-type" }, "Type"),
      this.type,
      h("label", { for: "filter-status" }, "State"),
      this.status,
      h("label", { for: "filter-search" }, "Search"),
      this.search,
      h("button", { type: "submit" }, "Apply"),
    );
    filters.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.load(true);
    });
    for (const select of [this.type, this.status]) select.addEventListener("change", () => void this.load(true));
    this.more.addEventListener("click", () => void this.load(false));
    this.element = h(
      "div",
      { class: "card" },
      h("h2", {}, project.name),
      project.description ? h("p", { class: "muted" }, project.description) : null,
      filters,
      h(
        "table",
        { class: "job-list" },
        h("thead", {}, h("tr", {}, ...["Name", "Type", "State", "Progress", "Created"].map((title) => h("th", {}, title)))),
        this.table,
      ),
      this.more,
    );
    void this.load(true);
    void this.watch();
  }

  /** Puts a job created here at the top (unless the live stream already did). */
  add(job: Job): void {
    if (!this.rows.has(job.id)) this.table.prepend(this.row(job));
  }

  /** Shows a job's new state in its row, if listed. */
  update(job: Job): void {
    const row = this.rows.get(job.id);
    if (!row) return;
    const state = row.querySelector<HTMLElement>(".state");
    if (state) state.textContent = stateName(job.status);
    const bar = row.querySelector<HTMLElement>("[role=progressbar]");
    if (bar) setProgress(bar, job.progress);
  }

  /** Ends the live stream. */
  close(): void {
    this.live.abort();
  }

  private async load(reset: boolean): Promise<void> {
    if (reset) {
      this.pageToken = "";
      this.rows.clear();
      replace(this.table);
    }
    try {
      const page = await jobs.listJobs({
        projectId: this.project.id,
        pageSize: PAGE_SIZE,
        pageToken: this.pageToken,
        type: Number(this.type.value),
        status: Number(this.status.value),
        search: this.search.value.trim(),
      });
      // The live stream starts with the list and may have shown a job already, as fresh as this page or more.
      for (const job of page.jobs) if (!this.rows.has(job.id)) append(this.table, this.row(job));
      this.pageToken = page.nextPageToken;
      this.more.hidden = this.pageToken === "";
    } catch (error) {
      notifyError(error);
    }
  }

  private async watch(): Promise<void> {
    const signal = this.live.signal;
    const error = await follow(() => jobs.watchJobs({ projectId: this.project.id }, { signal }), signal, (update) => {
      const job = update.job;
      if (!job) return;
      if (this.rows.has(job.id)) this.update(job);
      else if (this.matches(job)) this.table.prepend(this.row(job));
    });
    if (error) notify(`Live updates of the list stopped (${describeError(error)}); select the project again.`, "error");
  }

  // A job the list does not show that changed and now matches the filters is new (created here, by the CLI
  // or by a colleague) or has just reached the state filtered on: either way it belongs at the top.
  private matches(job: Job): boolean {
    return (
      [JobType.JOB_TYPE_UNSPECIFIED, job.type].includes(Number(this.type.value)) &&
      [JobState.JOB_STATE_UNSPECIFIED, job.status].includes(Number(this.status.value)) &&
      job.name.toLowerCase().includes(this.search.value.trim().toLowerCase())
    );
  }

  private row(job: Job): HTMLTableRowElement {
    const row = h(
      "tr",
      { "data-job-id": job.id, tabindex: 0, onclick: () => this.onOpen(job) },
      h("td", {}, job.name || "(unnamed)"),
      h("td", {}, typeName(job.type)),
      h("td", { class: "state" }, stateName(job.status)),
      h("td", {}, progressBar(job.progress, `Progress of ${job.name || job.id}`)),
      h("td", {}, when(job.createdAt)),
    );
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") this.onOpen(job);
    });
    this.rows.set(job.id, row);
    return row;
  }
}

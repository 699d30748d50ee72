// The signed-in console: projects on the left, the selected project's jobs (filters, list, submit form) in
// the middle, and the selected job live on the right. Viewers get no write controls; the server refuses
// their writes anyway.
import { jobs, projects } from "../client";
import { append, h, replace } from "../dom";
import type { Profile } from "../gen/aiorch/auth/v1/profiles_pb";
import type { Job } from "../gen/aiorch/jobs/v1/jobs_pb";
import { JobState, JobType } from "../gen/aiorch/jobs/v1/types_pb";
import type { Project } from "../gen/aiorch/projects/v1/projects_pb";
import { describeError } from "../errors";
import { stateName, typeName, when } from "../format";
import { JOB_TYPES } from "../jobTypes";
import { clearNotice, notify, notifyError } from "../notice";
import { follow } from "../streams";
import { jobForm } from "./jobForm";
import { JobPanel } from "./jobPanel";
import { progressBar, setProgress } from "./progress";

const PAGE_SIZE = 50;
const STATES = [JobState.PENDING, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED];

export class ConsoleView {
  readonly element: HTMLElement;
  private readonly canWrite: boolean;
  private readonly projectList = h("ul", { class: "projects", "aria-label": "Projects" });
  private readonly projectSearch = h("input", { id: "project-search", type: "search", placeholder: "Search projects" });
  private readonly jobsPane = h("section", { class: "jobs", "aria-label": "Jobs" });
  private readonly panelSlot = h("div", { class: "panel-slot" });
  private readonly rows = new Map<string, HTMLTableRowElement>();
  private panel: JobPanel | null = null;
  private listWatch = new AbortController();

  constructor(profile: Profile, onLogOut: () => void) {
    this.canWrite = profile.role !== "viewer";
    this.element = h(
      "div",
      { class: "console" },
      h(
        "header",
        {},
        h("h1", {}, "aiorch console"),
        h("span", { class: "who" }, `${profile.name || profile.username} (${profile.role})`),
        h("button", { type: "button", onclick: onLogOut }, "Log out"),
      ),
      h(
        "main",
        {},
        h(
          "aside",
          { class: "card" },
          h("h2", {}, "Projects"),
          h("label", { for: "project-search", class: "sr-only" }, "Search projects"),
          this.projectSearch,
          this.projectList,
          this.canWrite ? this.projectForm() : null,
        ),
        this.jobsPane,
        this.panelSlot,
      ),
    );
    let typing: number | undefined;
    this.projectSearch.addEventListener("input", () => {
      window.clearTimeout(typing);
      typing = window.setTimeout(() => void this.loadProjects(), 250);
    });
    void this.loadProjects();
  }

  private async loadProjects(): Promise<void> {
    try {
      const page = await projects.listProjects({ pageSize: PAGE_SIZE, search: this.projectSearch.value.trim(), ordering: "name" });
      replace(
        this.projectList,
        ...page.projects.map((project) =>
          h("li", {}, h("button", { type: "button", class: "link", onclick: () => this.selectProject(project) }, project.name)),
        ),
        page.projects.length === 0 ? h("li", { class: "muted" }, "No projects yet.") : null,
      );
    } catch (error) {
      notifyError(error);
    }
  }

  private projectForm(): HTMLElement {
    const name = h("input", { id: "project-name", name: "name", required: true });
    const description = h("input", { id: "project-description", name: "description" });
    const form = h(
      "form",
      { "aria-label": "New project" },
      h("h3", {}, "New project"),
      h("label", { for: "project-name" }, "Name"),
      name,
      h("label", { for: "project-description" }, "Description"),
      description,
      h("button", { type: "submit" }, "Create project"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      projects
        .createProject({ name: name.value.trim(), description: description.value.trim() })
        .then((project) => {
          form.reset();
          notify(`Project created: ${project.name}`);
          void this.loadProjects();
          this.selectProject(project);
        })
        .catch(notifyError);
    });
    return form;
  }

  private selectProject(project: Project): void {
    clearNotice();
    this.closePanel();
    this.listWatch.abort();
    this.listWatch = new AbortController();
    const type = h(
      "select",
      { id: "filter-type", name: "type" },
      h("option", { value: JobType.JOB_TYPE_UNSPECIFIED }, "any type"),
      ...JOB_TYPES.map((spec) => h("option", { value: spec.type }, typeName(spec.type))),
    );
    const status = h(
      "select",
      { id: "filter-status", name: "status" },
      h("option", { value: JobState.JOB_STATE_UNSPECIFIED }, "any state"),
      ...STATES.map((state) => h("option", { value: state }, stateName(state))),
    );
    const search = h("input", { id: "filter-search", name: "search", type: "search", placeholder: "Name contains" });
    const filters = h(
      "form",
      { class: "filters", "aria-label": "Job filters" },
      h("label", { for: "filter-type" }, "Type"),
      type,
      h("label", { for: "filter-status" }, "State"),
      status,
      h("label", { for: "filter-search" }, "Search"),
      search,
      h("button", { type: "submit" }, "Apply"),
    );
    const table = h("tbody", {});
    const more = h("button", { type: "button", hidden: true }, "Load more");
    let pageToken = "";
    const load = async (reset: boolean) => {
      if (reset) {
        pageToken = "";
        this.rows.clear();
        replace(table);
      }
      try {
        const page = await jobs.listJobs({
          projectId: project.id,
          pageSize: PAGE_SIZE,
          pageToken,
          type: Number(type.value),
          status: Number(status.value),
          search: search.value.trim(),
        });
        // The live stream starts with the list and may have shown a job already, as fresh as this page or more.
        for (const job of page.jobs) if (!this.rows.has(job.id)) append(table, this.row(job));
        pageToken = page.nextPageToken;
        more.hidden = pageToken === "";
      } catch (error) {
        notifyError(error);
      }
    };
    filters.addEventListener("submit", (event) => {
      event.preventDefault();
      void load(true);
    });
    for (const select of [type, status]) select.addEventListener("change", () => void load(true));
    more.addEventListener("click", () => void load(false));
    replace(
      this.jobsPane,
      h(
        "div",
        { class: "card" },
        h("h2", {}, project.name),
        project.description ? h("p", { class: "muted" }, project.description) : null,
        filters,
        h(
          "table",
          { class: "job-list" },
          h("thead", {}, h("tr", {}, ...["Name", "Type", "State", "Progress", "Created"].map((title) => h("th", {}, title)))),
          table,
        ),
        more,
      ),
      this.canWrite
        ? jobForm(project.id, (job) => {
            // The list's live stream may have shown it already.
            if (!this.rows.has(job.id)) table.prepend(this.row(job));
            this.openJob(job);
          })
        : null,
    );
    void load(true);
    // A job the list does not show that changed and now matches the filters: new (created here, by the CLI
    // or by a colleague), or one that just reached the state filtered on.
    const matches = (job: Job) =>
      [JobType.JOB_TYPE_UNSPECIFIED, job.type].includes(Number(type.value)) &&
      [JobState.JOB_STATE_UNSPECIFIED, job.status].includes(Number(status.value)) &&
      job.name.toLowerCase().includes(search.value.trim().toLowerCase());
    void this.watchList(project.id, this.listWatch.signal, (job) => {
      if (this.rows.has(job.id)) this.updateRow(job);
      else if (matches(job)) table.prepend(this.row(job));
    });
  }

  /** Keeps the list live over the WatchJobs stream (one per project on screen, no polling). */
  private async watchList(projectId: string, signal: AbortSignal, onJob: (job: Job) => void): Promise<void> {
    const error = await follow(() => jobs.watchJobs({ projectId }, { signal }), signal, (update) => {
      if (update.job) onJob(update.job);
    });
    if (error) notify(`Live updates of the list stopped (${describeError(error)}); select the project again.`, "error");
  }

  private row(job: Job): HTMLTableRowElement {
    const row = h(
      "tr",
      { "data-job-id": job.id, tabindex: 0, onclick: () => this.openJob(job) },
      h("td", {}, job.name || "(unnamed)"),
      h("td", {}, typeName(job.type)),
      h("td", { class: "state" }, stateName(job.status)),
      h("td", {}, progressBar(job.progress, `Progress of ${job.name || job.id}`)),
      h("td", {}, when(job.createdAt)),
    );
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") this.openJob(job);
    });
    this.rows.set(job.id, row);
    return row;
  }

  private updateRow(job: Job): void {
    const row = this.rows.get(job.id);
    if (!row) return;
    const state = row.querySelector<HTMLElement>(".state");
    if (state) state.textContent = stateName(job.status);
    const bar = row.querySelector<HTMLElement>("[role=progressbar]");
    if (bar) setProgress(bar, job.progress);
  }

  private openJob(job: Job): void {
    if (this.panel?.element.dataset["jobId"] === job.id) return;
    this.closePanel();
    this.panel = new JobPanel(job, this.canWrite, (changed) => this.updateRow(changed));
    replace(this.panelSlot, this.panel.element);
  }

  /** Ends the live streams (on log out). */
  close(): void {
    this.listWatch.abort();
    this.closePanel();
  }

  private closePanel(): void {
    this.panel?.close();
    this.panel = null;
    replace(this.panelSlot);
  }
}

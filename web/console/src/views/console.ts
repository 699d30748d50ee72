// The signed-in console: projects on the left, the selected project's jobs (filters, live list, submit form)
// in the middle, and the selected job live on the right. Viewers get no write controls; the server refuses
// their writes anyway.
import { projects } from "../client";
import { h, replace } from "../dom";
import type { Profile } from "../gen/aiorch/auth/v1/profiles_pb";
import type { Job } from "../gen/aiorch/jobs/v1/jobs_pb";
import type { Project } from "../gen/aiorch/projects/v1/projects_pb";
import { clearNotice, notify, notifyError } from "../notice";
import { jobForm } from "./jobForm";
import { JobList } from "./jobList";
import { JobPanel } from "./jobPanel";

const PAGE_SIZE = 50;

export class ConsoleView {
  readonly element: HTMLElement;
  private readonly canWrite: boolean;
  private readonly projectList = h("ul", { class: "projects", "aria-label": "Projects" });
  private readonly projectSearch = h("input", { id: "project-search", type: "search", placeholder: "Search projects" });
  private readonly jobsPane = h("section", { class: "jobs", "aria-label": "Jobs" });
  private readonly panelSlot = h("div", { class: "panel-slot" });
  private list: JobList | null = null;
  private panel: JobPanel | null = null;

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

  /** Ends the live streams (on log out). */
  close(): void {
    this.list?.close();
    this.closePanel();
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
    this.close();
    const list = new JobList(project, (job) => this.openJob(job));
    this.list = list;
    replace(
      this.jobsPane,
      list.element,
      this.canWrite
        ? jobForm(project.id, (job) => {
            list.add(job);
            this.openJob(job);
          })
        : null,
    );
  }

  private openJob(job: Job): void {
    if (this.panel?.element.dataset["jobId"] === job.id) return;
    this.closePanel();
    this.panel = new JobPanel(job, this.canWrite, (changed) => this.list?.update(changed));
    replace(this.panelSlot, this.panel.element);
  }

  private closePanel(): void {
    this.panel?.close();
    this.panel = null;
    replace(this.panelSlot);
  }
}

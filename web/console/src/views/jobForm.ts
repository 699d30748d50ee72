// Submitting a job of any type: its typed parameters, and an uploaded file or an http(s) address as input.
import { jobs, uploadFile } from "../client";
import { h, replace } from "../dom";
import { typeName } from "../format";
import type { Job } from "../gen/aiorch/jobs/v1/jobs_pb";
import { JOB_TYPES, jobTypeSpec, paramsFromForm, type JobTypeSpec, type ParamField } from "../jobTypes";
import { notify, notifyError } from "../notice";

/** A form that creates a job in `projectId` and hands it to `onCreated`. */
export function jobForm(projectId: string, onCreated: (job: Job) => void): HTMLElement {
  const typeSelect = h(
    "select",
    { id: "job-type", name: "type" },
    ...JOB_TYPES.map((spec) => h("option", { value: spec.type }, `${spec.label} (${typeName(spec.type)})`)),
  );
  const fields = h("div", { class: "fields" });
  const submit = h("button", { type: "submit" }, "Submit job");
  const form = h(
    "form",
    { class: "card job-form", "aria-label": "New job" },
    h("h3", {}, "New job"),
    h("label", { for: "job-type" }, "Type"),
    typeSelect,
    h("label", { for: "job-name" }, "Name (optional)"),
    h("input", { id: "job-name", name: "name" }),
    fields,
    submit,
  );
  const spec = (): JobTypeSpec => jobTypeSpec(Number(typeSelect.value));
  const drawFields = () => replace(fields, ...spec().fields.map(fieldControl), inputControl(spec()));
  typeSelect.addEventListener("change", drawFields);
  drawFields();

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit.disabled = true;
    create(projectId, spec(), new FormData(form))
      .then((job) => {
        notify(`Job submitted: ${job.name || job.id}`);
        form.reset();
        drawFields();
        onCreated(job);
      })
      .catch(notifyError)
      .finally(() => {
        submit.disabled = false;
      });
  });
  return form;
}

async function create(projectId: string, spec: JobTypeSpec, form: FormData): Promise<Job> {
  const params = paramsFromForm(spec, form);
  let inputFileId = "";
  const file = form.get("input_file");
  if (spec.accept && file instanceof File && file.size > 0) {
    inputFileId = (await uploadFile(file, file.name)).id;
  }
  return jobs.createJob({
    projectId,
    type: spec.type,
    name: String(form.get("name") ?? "").trim(),
    params,
    inputFileId,
    inputUrl: spec.accept && !inputFileId ? String(form.get("input_url") ?? "").trim() : "",
    // Makes a double submit (a retried request) create the job once.
    clientRequestId: requestId(),
  });
}

function fieldControl(field: ParamField): HTMLElement {
  const id = `param-${field.name}`;
  if (field.kind === "checks") {
    return h(
      "fieldset",
      {},
      h("legend", {}, field.label),
      ...(field.options ?? []).map((option) =>
        h("label", { class: "check" }, h("input", { type: "checkbox", name: field.name, value: option, checked: true }), option),
      ),
    );
  }
  let control: HTMLElement;
  if (field.kind === "textarea") control = h("textarea", { id, name: field.name, rows: 3, required: field.required });
  else if (field.kind === "select") control = h("select", { id, name: field.name }, ...(field.options ?? []).map((o) => h("option", { value: o }, o)));
  else {
    control = h("input", {
      id,
      name: field.name,
      type: field.kind,
      value: field.value,
      required: field.required,
      min: field.min,
      max: field.max,
      step: field.step,
    });
  }
  return h("div", { class: "field" }, h("label", { for: id }, field.label), control);
}

function inputControl(spec: JobTypeSpec): HTMLElement | null {
  if (!spec.accept) return null;
  return h(
    "fieldset",
    {},
    h("legend", {}, "Input"),
    h("label", { for: "input-file" }, "Upload a file"),
    h("input", { id: "input-file", name: "input_file", type: "file", accept: spec.accept }),
    h("label", { for: "input-url" }, "or fetch from an http(s) address"),
    h("input", { id: "input-url", name: "input_url", type: "url", placeholder: "https://..." }),
  );
}

// crypto.randomUUID needs a secure context; a console opened over plain http on a LAN address has none.
function requestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// What each job type asks for: its typed parameters (the `oneof` in protos/aiorch/jobs/v1/types.proto)
// and the kind of input file it takes. The submit form is drawn from this table.
//
// The list of types is the generated `JobType` enum: the table is keyed by it, so a type added to the
// protos does not compile until it has an entry here, and the parameters member is the generated oneof's.
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { JobParamsSchema, JobType, JobTypeSchema, type JobParams } from "./gen/aiorch/jobs/v1/types_pb";

export interface ParamField {
  /** The field's JSON name in the parameters message. */
  name: string;
  label: string;
  kind: "text" | "textarea" | "number" | "select" | "checks";
  options?: string[];
  value?: string;
  required?: boolean;
  min?: number;
  max?: number;
  step?: number;
}

export interface JobTypeSpec {
  type: JobType;
  label: string;
  /** The `JobParams` oneof member, as its JSON name. */
  params: NonNullable<JobParams["params"]["case"]>;
  /** Input file's media types for the file picker, or null when the type takes none. */
  accept: string | null;
  fields: ParamField[];
}

const language = (value = "en"): ParamField => ({ name: "language", label: "Language", kind: "text", value });
const voice: ParamField = { name: "voice", label: "Voice (optional)", kind: "text" };
const audioFormat: ParamField = { name: "format", label: "Format", kind: "select", options: ["wav", "mp3", "ogg"] };

type KnownJobType = Exclude<JobType, JobType.JOB_TYPE_UNSPECIFIED>;

const SPECS: { [T in KnownJobType]: Omit<JobTypeSpec, "type"> } = {
  [JobType.TTS]: {
    label: "Text to speech",
    params: "tts",
    accept: null,
    fields: [
      { name: "text", label: "Text", kind: "textarea", required: true },
      language(),
      voice,
      { name: "rate", label: "Rate (words/min, optional)", kind: "number", min: 80, max: 450 },
      { name: "pitch", label: "Pitch (0-100, optional)", kind: "number", min: 0, max: 100 },
      audioFormat,
    ],
  },
  [JobType.STT]: {
    label: "Speech to text",
    params: "stt",
    accept: "audio/*,video/*",
    fields: [
      { name: "language", label: "Language (empty: detect)", kind: "text", value: "" },
      { name: "model", label: "Model", kind: "select", options: ["base", "tiny.en"] },
      { name: "task", label: "Task", kind: "select", options: ["transcribe", "translate"] },
      { name: "formats", label: "Also write", kind: "checks", options: ["txt", "srt", "vtt"] },
    ],
  },
  [JobType.VOICE_CLONING]: {
    label: "Voice cloning",
    params: "voiceCloning",
    accept: "audio/*",
    fields: [{ name: "text", label: "Text", kind: "textarea", required: true }, language(), audioFormat],
  },
  [JobType.DUBBING]: {
    label: "Dubbing",
    params: "dubbing",
    accept: "audio/*,video/*",
    fields: [
      { name: "sourceLanguage", label: "Spoken language", kind: "text", value: "en" },
      { name: "targetLanguage", label: "Dub into", kind: "text", value: "es", required: true },
      voice,
      { name: "originalVolume", label: "Original volume (0-1)", kind: "number", min: 0, max: 1, step: 0.05, value: "0.2" },
    ],
  },
  [JobType.AI_STORIES]: {
    label: "AI story (talking head from a portrait)",
    params: "aiStories",
    accept: "image/*",
    fields: [
      { name: "script", label: "Script", kind: "textarea", required: true },
      language(),
      voice,
      { name: "fps", label: "Frames per second (optional)", kind: "number", min: 1, max: 60 },
    ],
  },
};

/** Every job type of the generated enum, in its order, but those without an input file first: the submit
 * form opens on the first entry, which then needs nothing uploaded. */
export const JOB_TYPES: JobTypeSpec[] = JobTypeSchema.values
  .filter((value) => value.number !== JobType.JOB_TYPE_UNSPECIFIED)
  .map((value) => ({ type: value.number, ...SPECS[value.number as KnownJobType] }))
  .sort((a, b) => Number(b.accept === null) - Number(a.accept === null));

/** The spec of a job type. */
export function jobTypeSpec(type: JobType): JobTypeSpec {
  const spec = JOB_TYPES.find((candidate) => candidate.type === type);
  if (!spec) throw new Error(`unknown job type ${type}`);
  return spec;
}

/** Typed parameters from the form's values; empty optional fields are left for the server's defaults. */
export function paramsFromForm(spec: JobTypeSpec, form: FormData): JobParams {
  const values: JsonObject = {};
  for (const field of spec.fields) {
    if (field.kind === "checks") {
      const checked = form.getAll(field.name).map(String);
      if (checked.length > 0) values[field.name] = checked;
      continue;
    }
    const raw = String(form.get(field.name) ?? "").trim();
    if (raw === "") continue;
    values[field.name] = field.kind === "number" ? Number(raw) : raw;
  }
  return fromJson(JobParamsSchema, { [spec.params]: values });
}

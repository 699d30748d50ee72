// Display helpers for generated messages.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { JobState, JobType } from "./gen/aiorch/jobs/v1/types_pb";

/** "STT", "COMPLETED": the names the API uses in JSON. */
export const typeName = (type: JobType): string => JobType[type];
export const stateName = (state: JobState): string => JobState[state];

/** Whether no more updates will come. */
export const isFinal = (state: JobState): boolean =>
  state === JobState.COMPLETED || state === JobState.FAILED || state === JobState.CANCELLED;

/** A short local date and time, or "" when unset. */
export function when(timestamp: Timestamp | undefined): string {
  return timestamp ? timestampDate(timestamp).toLocaleString() : "";
}

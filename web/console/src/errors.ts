// One place that turns any failure into the sentence the user reads.
import { Code, ConnectError } from "@connectrpc/connect";
import { SessionExpired } from "./session";

const PREFIXES: Partial<Record<Code, string>> = {
  [Code.PermissionDenied]: "Permission denied",
  [Code.Unauthenticated]: "Not authenticated",
  [Code.InvalidArgument]: "Invalid input",
  [Code.NotFound]: "Not found",
  [Code.AlreadyExists]: "Already exists",
  [Code.FailedPrecondition]: "Not possible now",
  [Code.ResourceExhausted]: "Too many requests",
  [Code.Unavailable]: "The server is unavailable, try again",
  [Code.DeadlineExceeded]: "The server took too long",
  [Code.Internal]: "Server error",
  // What fetch reports when the gateway cannot be reached at all.
  [Code.Unknown]: "Something went wrong",
};

/** A clear message for an error from a call, a refresh or the browser. */
export function describeError(error: unknown): string {
  const failure = ConnectError.from(error);
  // A refresh that failed inside a call reaches us wrapped by the transport.
  const expired = error instanceof SessionExpired ? error : failure.cause instanceof SessionExpired ? failure.cause : null;
  if (expired) return expired.message;
  const prefix = PREFIXES[failure.code] ?? Code[failure.code];
  return failure.rawMessage ? `${prefix}: ${failure.rawMessage}` : prefix;
}

/** Whether the error says the refresh token was refused (as opposed to the network failing). */
export function isRefusal(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return [Code.Unauthenticated, Code.PermissionDenied, Code.InvalidArgument, Code.NotFound].includes(code);
}

// The typed gRPC-web clients (generated from protos/ at build time) and the REST calls gRPC-web cannot
// make, all sending the access token and refreshing it transparently once when the server refuses it.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { fromJson } from "@bufbuild/protobuf";
import { ProfileService, type Profile } from "./gen/aiorch/auth/v1/profiles_pb";
import { TokenService } from "./gen/aiorch/auth/v1/tokens_pb";
import { FileSchema, type File as UploadedFile } from "./gen/aiorch/jobs/v1/files_pb";
import { JobService } from "./gen/aiorch/jobs/v1/jobs_pb";
import { JobResultService } from "./gen/aiorch/jobs/v1/results_pb";
import { ProjectService } from "./gen/aiorch/projects/v1/projects_pb";
import { isRefusal } from "./errors";
import { Session } from "./session";

// Same origin: the gateway serves the console and the API on one port.
const baseUrl = window.location.origin;

const anonymous = createGrpcWebTransport({ baseUrl });
export const tokens = createClient(TokenService, anonymous);

export const session = new Session(
  async (refresh) => tokens.refreshToken({ refresh }),
  isRefusal,
);

// Streams cannot be replayed here (their request iterable is spent), so they only get the token refreshed
// before they start; the watch code reopens a stream the server refused.
const bearer: Interceptor = (next) => async (request) => {
  request.header.set("authorization", `Bearer ${await session.accessToken()}`);
  if (request.stream) return next(request);
  try {
    return await next(request);
  } catch (error) {
    if (ConnectError.from(error).code !== Code.Unauthenticated) throw error;
    request.header.set("authorization", `Bearer ${await session.refresh()}`);
    return next(request);
  }
};

const authorized = createGrpcWebTransport({ baseUrl, interceptors: [bearer] });
export const profiles = createClient(ProfileService, authorized);
export const projects = createClient(ProjectService, authorized);
export const jobs = createClient(JobService, authorized);
export const results = createClient(JobResultService, authorized);

/** Signs in and keeps the pair; returns the user's profile. */
export async function logIn(username: string, password: string): Promise<Profile> {
  session.store(await tokens.obtainToken({ username, password }));
  return profiles.getProfile({ id: "me" });
}

/** Revokes the refresh token's family on the server and forgets the pair. */
export async function logOut(): Promise<void> {
  const refresh = session.refreshToken;
  session.clear();
  if (refresh) await tokens.revokeToken({ refresh }).catch(() => undefined);
}

// The gateway maps gRPC errors to JSON bodies `{"code": 7, "message": "..."}` on REST paths.
async function restError(response: Response): Promise<ConnectError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { code?: number; message?: string };
    if (typeof body.code === "number") return new ConnectError(body.message ?? "", body.code as Code);
  } catch {
    // Not JSON (e.g. Envoy's own plain-text 401): fall through to the HTTP status.
  }
  const code = response.status === 401 ? Code.Unauthenticated : response.status === 403 ? Code.PermissionDenied : Code.Unknown;
  return new ConnectError(text || response.statusText, code);
}

async function restFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const send = async (token: string) => {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${token}`);
    return fetch(path, { ...init, headers });
  };
  let response = await send(await session.accessToken());
  if (response.status === 401) response = await send(await session.refresh());
  if (!response.ok) throw await restError(response);
  return response;
}

/** Uploads a job input as the raw body of `POST /api/files` (gRPC-web has no client streaming). */
export async function uploadFile(file: Blob, filename: string): Promise<UploadedFile> {
  const response = await restFetch(`/api/files/?filename=${encodeURIComponent(filename)}`, {
    method: "POST",
    body: file,
    headers: { "content-type": file.type || "application/octet-stream" },
  });
  return fromJson(FileSchema, await response.json(), { ignoreUnknownFields: true });
}

/** Downloads one output of a result as a Blob (the download path needs the bearer token, so no plain link). */
export async function downloadResult(resultId: string, file: string): Promise<Blob> {
  const response = await restFetch(
    `/api/job-results/${encodeURIComponent(resultId)}/download?file=${encodeURIComponent(file)}`,
  );
  return response.blob();
}

// Following a gRPC-web server stream. The bearer interceptor cannot replay a stream the server refused
// (its request is spent), so the reopen after a token refresh happens here, once.
import { Code, ConnectError } from "@connectrpc/connect";
import { session } from "./client";

/**
 * Hands every message of the stream `open()` starts to `onMessage` until it ends or `signal` aborts.
 * Resolves with the error that ended it, or null when it ended normally or was aborted.
 */
export async function follow<T>(
  open: () => AsyncIterable<T>,
  signal: AbortSignal,
  onMessage: (message: T) => void,
): Promise<unknown> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      for await (const message of open()) onMessage(message);
      return null;
    } catch (error) {
      if (signal.aborted) return null;
      if (attempt > 0 || ConnectError.from(error).code !== Code.Unauthenticated) return error;
      try {
        await session.refresh();
      } catch (refreshError) {
        return refreshError;
      }
    }
  }
}

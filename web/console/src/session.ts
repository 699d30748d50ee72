// The signed-in user's token pair. Kept in sessionStorage: it dies with the tab and is never sent as a
// cookie, so no CSRF token is needed.

const ACCESS_KEY = "aiorch.access";
const REFRESH_KEY = "aiorch.refresh";
// Refresh a little before expiry so a call never leaves with a token that dies on the way.
const EXPIRY_MARGIN_SECONDS = 15;

/** The claims the console reads from an access token (the server checks the signature, not us). */
export interface Claims {
  sub: string;
  role: string;
  exp: number;
}

export interface TokenPair {
  access: string;
  refresh: string;
}

/** The refresh token was refused: the user has to log in again. */
export class SessionExpired extends Error {
  constructor() {
    super("Your session has expired. Please log in again.");
    this.name = "SessionExpired";
  }
}

/** The claims of a JWT, or null when it is not one. */
export function decodeClaims(token: string): Claims | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const claims = JSON.parse(json) as Partial<Claims>;
    if (typeof claims.sub !== "string" || typeof claims.role !== "string" || typeof claims.exp !== "number") {
      return null;
    }
    return { sub: claims.sub, role: claims.role, exp: claims.exp };
  } catch {
    return null;
  }
}

export class Session {
  private pending: Promise<string> | null = null;
  private readonly expiredListeners: (() => void)[] = [];

  constructor(
    private readonly exchange: (refresh: string) => Promise<TokenPair>,
    // Tells a refused refresh token from a network failure, which must not log the user out.
    private readonly isRefusal: (error: unknown) => boolean,
    private readonly storage: Storage = window.sessionStorage,
  ) {}

  /** Whether a token pair is stored. */
  get active(): boolean {
    return this.storage.getItem(REFRESH_KEY) !== null;
  }

  /** The stored access token's claims (null when absent or unreadable). */
  get claims(): Claims | null {
    const access = this.storage.getItem(ACCESS_KEY);
    return access ? decodeClaims(access) : null;
  }

  /** Keeps a fresh pair. */
  store(pair: TokenPair): void {
    this.storage.setItem(ACCESS_KEY, pair.access);
    this.storage.setItem(REFRESH_KEY, pair.refresh);
  }

  /** Forgets the pair (log out). */
  clear(): void {
    this.storage.removeItem(ACCESS_KEY);
    this.storage.removeItem(REFRESH_KEY);
  }

  /** The stored refresh token, for logging out. */
  get refreshToken(): string | null {
    return this.storage.getItem(REFRESH_KEY);
  }

  /** Calls `listener` whenever the session ends because the refresh token was refused. */
  onExpired(listener: () => void): void {
    this.expiredListeners.push(listener);
  }

  /** An access token that is not about to expire, refreshing first when needed. */
  async accessToken(): Promise<string> {
    const access = this.storage.getItem(ACCESS_KEY);
    const claims = access ? decodeClaims(access) : null;
    if (access && claims && claims.exp - EXPIRY_MARGIN_SECONDS > Date.now() / 1000) return access;
    return this.refresh();
  }

  /** Rotates the pair. Concurrent callers share one exchange: a refresh token is spent on first use. */
  refresh(): Promise<string> {
    this.pending ??= this.rotate().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  private async rotate(): Promise<string> {
    const refresh = this.storage.getItem(REFRESH_KEY);
    if (!refresh) throw new SessionExpired();
    let pair: TokenPair;
    try {
      pair = await this.exchange(refresh);
    } catch (error) {
      if (!this.isRefusal(error)) throw error;
      this.clear();
      for (const listener of this.expiredListeners) listener();
      throw new SessionExpired();
    }
    this.store(pair);
    return pair.access;
  }
}

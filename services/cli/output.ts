/** A mistake in the command line itself; printed with exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Where the CLI writes: with --json, one JSON document on stdout and nothing
 * else; otherwise the result on stdout and remarks on stderr, so that
 * `TOKEN=$(airlock token create)` captures only the token.
 */
export class Output {
  constructor(private readonly json: boolean) {}

  result(json: unknown, human: () => string): void {
    if (this.json) {
      process.stdout.write(JSON.stringify(json, null, 2) + "\n");
      return;
    }
    const text = human();
    if (text) process.stdout.write(text + "\n");
  }

  note(text: string): void {
    if (!this.json) process.stderr.write(text + "\n");
  }
}

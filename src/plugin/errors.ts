/** Errors the plugin reports to the user, one line each (API errors: see api-errors.ts). */

/** A failure with a message meant for the user; the process exits 1 after printing it. */
export class PluginError extends Error {
  override name = 'PluginError';
}

/** A command line that cannot be understood; printed with a pointer to --help. */
export class UsageError extends PluginError {
  override name = 'UsageError';
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

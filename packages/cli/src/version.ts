/** ferry's version, in one place: `--version` and the User-Agent of its registry requests. */
export const VERSION = '0.1.0';

/** How the executor's Python code is found: the same for serving and for checking policies. */
import { join } from "node:path";

/** The environment of a Python process running the executor's code from `home`. */
export function executorEnvironment(home: string): Record<string, string> {
  return {
    PYTHONPATH: [join(home, "python"), join(home, "src", "gen", "python")].join(":"),
    PYTHONUNBUFFERED: "1",
    PYTHONDONTWRITEBYTECODE: "1",
  };
}

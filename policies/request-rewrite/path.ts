/** Path rewrites, compiled once per chain: prefix replacement and RE2 substitution. */
import { RE2JS } from "re2js";

/** The rewritten path (without query), or undefined when the rule does not apply. */
export type PathRewrite = (path: string) => string | undefined;

export interface PathRule {
  readonly prefix?: { readonly match: string; readonly replacement: string };
  readonly regex?: { readonly pattern: string; readonly substitution: string };
}

const REFERENCE = /\$(\$|\d+|<([^>]*)>|.?)/g;

/** Checks that a substitution refers only to groups the pattern has. */
function checkSubstitution(re: RE2JS, substitution: string): void {
  for (const [, ref, name] of substitution.matchAll(REFERENCE)) {
    if (ref === "$") continue;
    if (/^\d+$/.test(ref)) {
      if (Number(ref) > re.groupCount()) {
        throw new Error(`path.regex.substitution: $${ref} but the pattern has ${re.groupCount()} groups`);
      }
    } else if (name !== undefined) {
      if (!Object.hasOwn(re.namedGroups(), name)) {
        throw new Error(`path.regex.substitution: $<${name}> but the pattern has no group (?P<${name}>...)`);
      }
    } else {
      throw new Error(`path.regex.substitution: a lone "$" (write $$ for a literal $)`);
    }
  }
}

function regexRewrite(pattern: string, substitution: string): PathRewrite {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (error) {
    throw new Error(`path.regex.pattern: not an RE2 regular expression: ${(error as Error).message}`);
  }
  checkSubstitution(re, substitution);
  return (path) => {
    const matcher = re.matcher(path);
    if (!matcher.find()) return undefined;
    return re.matcher(path).replaceAll(substitution);
  };
}

/** Compiles a path rule; throws naming the parameter when it cannot work. */
export function compilePathRule(rule: PathRule): PathRewrite {
  if (rule.regex) return regexRewrite(rule.regex.pattern, rule.regex.substitution);
  const { match, replacement } = rule.prefix!;
  return (path) => path.startsWith(match) ? replacement + path.slice(match.length) : undefined;
}

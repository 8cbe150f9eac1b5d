/** The data classes a rule applies to, in the order rules are listed. */
export const dataClasses = ["content", "metadata", "receipts"] as const;
export type DataClass = (typeof dataClasses)[number];

/** A retention period in whole days; null keeps forever. */
export type Days = number | null;

/** Rules in force for one org, one period per class. */
export type RuleSet = Record<DataClass, Days>;

const maxDays = 36_500;

/** Parses `30d` or `forever`; undefined when it is neither (or out of 1..36500 days). */
export function parseRetention(text: string): Days | undefined {
  if (text === "forever") return null;
  const m = /^(\d{1,5})d$/.exec(text);
  if (!m) return undefined;
  const days = Number(m[1]);
  return days >= 1 && days <= maxDays ? days : undefined;
}

export function formatRetention(days: Days): string {
  return days === null ? "forever" : `${days}d`;
}

export const retentionSyntax = `"<days>d" (1 to ${maxDays}) or "forever"`;

const longer = (a: Days, b: Days) => (a === null ? b !== null : b !== null && a > b);

/**
 * Why a rule set cannot stand, or undefined. Receipts prove what was
 * deleted, so they must outlive the metadata they describe; content goes
 * with its record, so keeping it longer than the metadata would be a
 * promise the log cannot keep.
 */
export function ruleSetProblem(rules: RuleSet): string | undefined {
  if (longer(rules.metadata, rules.receipts))
    return `receipts (${formatRetention(rules.receipts)}) cannot be kept shorter than metadata (${formatRetention(rules.metadata)})`;
  if (longer(rules.content, rules.metadata))
    return `content (${formatRetention(rules.content)}) cannot be kept longer than metadata (${formatRetention(rules.metadata)}): content is deleted with its record`;
  return undefined;
}

const dayMs = 86_400_000;

/** The time before which a class is expired at `nowMs`; undefined for forever. */
export function cutoffMs(days: Days, nowMs: number): number | undefined {
  return days === null ? undefined : nowMs - days * dayMs;
}

import type { OcsfEvent, SeverityId } from "./ocsf.js";

/** The parts of an RFC 5424 header that belong to the sender, not to the event. */
export interface SyslogHeader {
  /** 0–23; 13 is "log audit". */
  facility: number;
  hostname: string;
  appName: string;
  procId: string;
}

// OCSF severity → syslog severity (0 emergency … 7 debug).
const syslogSeverities: { [id in SeverityId]: number } = {
  0: 6,
  1: 6,
  2: 5,
  3: 4,
  4: 3,
  5: 2,
  6: 1,
  99: 5,
};

/** PRI = facility × 8 + severity, the severity taken from the event's OCSF severity. */
export function priority(facility: number, severity: SeverityId): number {
  return facility * 8 + syslogSeverities[severity];
}

// RFC 5424 header fields are printable US-ASCII without spaces, each with a maximum length.
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^!-~]/g, "-").slice(0, max);
  return clean === "" ? "-" : clean;
}

/**
 * One RFC 5424 message: the header, no structured data, and the OCSF event
 * as JSON for MSG. The MSG carries no byte-order mark: receivers that parse
 * MSG as JSON choke on one, and RFC 5424 allows MSG without it.
 */
export function syslogMessage(event: OcsfEvent, header: SyslogHeader): string {
  return [
    `<${priority(header.facility, event.severity_id)}>1`,
    new Date(event.time).toISOString(),
    headerField(header.hostname, 255),
    headerField(header.appName, 48),
    headerField(header.procId, 128),
    headerField(event.unmapped.kind, 32),
    "-",
    JSON.stringify(event),
  ].join(" ");
}

/** Octet-counting framing (RFC 6587 §3.4.1): the message's length in bytes, a space, the message. */
export function octetFrame(message: string): string {
  return `${Buffer.byteLength(message, "utf8")} ${message}`;
}

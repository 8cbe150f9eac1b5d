import type { Queryable } from "../../kit/pg.js";
import type { ExportCursor, ExportCursors } from "./source.js";

/** Export cursors in `audit.export_cursors` (migration 002_export.sql). */
export class PgExportCursors implements ExportCursors {
  constructor(private readonly db: Queryable) {}

  async load(sink: string): Promise<ExportCursor | undefined> {
    const { rows } = await this.db.query<{ cursor: ExportCursor }>(
      "SELECT cursor FROM audit.export_cursors WHERE sink = $1",
      [sink],
    );
    return rows[0]?.cursor;
  }

  async save(sink: string, cursor: ExportCursor): Promise<void> {
    await this.db.query(
      `INSERT INTO audit.export_cursors (sink, cursor, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (sink) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()`,
      [sink, JSON.stringify(cursor)],
    );
  }
}

import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse as renderGoTemplate } from "@evertdespiegeleer/go-template";
import { parseAllDocuments, parse } from "yaml";

/** One object the chart renders, and the template file it came from. */
export interface Rendered {
  template: string;
  object: { apiVersion: string; kind: string; metadata: { name: string } } & Record<
    string,
    unknown
  >;
}

type Values = Record<string, unknown>;

/** Helm's merge of --set/-f values over values.yaml: maps merge key by key, anything else replaces. */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && b && typeof v === "object" && typeof b === "object" && !Array.isArray(v)
        ? mergeValues(b as Values, v as Values)
        : v;
  }
  return out;
}

/** The chart's values.yaml with `overrides` merged over it. */
export async function chartValues(chartDir: string, overrides: Values = {}): Promise<Values> {
  return mergeValues(
    parse(await readFile(join(chartDir, "values.yaml"), "utf8")) as Values,
    overrides,
  );
}

/**
 * `helm template` without helm (none is installable here): every template
 * (templates/*.yaml, with the templates/_*.tpl partials that define named
 * templates) is executed by Go's own text/template, compiled to WebAssembly
 * (@evertdespiegeleer/go-template), on the data helm passes: .Values,
 * .Release, .Chart (Chart.yaml's fields, capitalised), .Capabilities. The
 * chart uses Go's built-in functions only, so no sprig function is missing;
 * a function this renderer lacks fails the render. Missing map keys are an
 * error here where helm prints nothing: stricter, never more lenient.
 */
export async function renderChart(
  chartDir: string,
  values: Values,
  release = { Name: "airlock", Namespace: "airlock" },
): Promise<Rendered[]> {
  const chart = parse(await readFile(join(chartDir, "Chart.yaml"), "utf8")) as Values;
  const data = {
    Values: values,
    Release: { ...release, Service: "Helm", IsInstall: true, IsUpgrade: false, Revision: 1 },
    Chart: Object.fromEntries(
      Object.entries(chart).map(([k, v]) => [k[0]!.toUpperCase() + k.slice(1), v]),
    ),
    Capabilities: { KubeVersion: { Version: "v1.30.0", Major: "1", Minor: "30" } },
  };
  const dir = join(chartDir, "templates");
  const files = (await readdir(dir)).sort();
  let partials = "";
  for (const f of files.filter((f) => f.startsWith("_") && f.endsWith(".tpl")))
    partials += await readFile(join(dir, f), "utf8");
  const rendered: Rendered[] = [];
  for (const f of files.filter((f) => !f.startsWith("_") && /\.ya?ml$/.test(f))) {
    const text = await renderGoTemplate(partials + (await readFile(join(dir, f), "utf8")), data);
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) throw new Error(`${f}: ${doc.errors[0]!.message}\n${text}`);
      const object = doc.toJS() as Rendered["object"] | null;
      if (object) rendered.push({ template: f, object });
    }
  }
  return rendered;
}

#!/usr/bin/env node
// The `airlock` command. TypeScript sources run through tsx's loader; the
// container image runs the compiled JavaScript instead.
import { register } from "tsx/esm/api";

register();
await import("../services/cli/main.ts");

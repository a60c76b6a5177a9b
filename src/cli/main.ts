#!/usr/bin/env node
// The package's command: gpt2-cycles [COMMAND] [flags] (see commands.ts).
import { cli } from "./commands.ts";

process.exitCode = await cli(process.argv.slice(2));

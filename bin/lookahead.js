#!/usr/bin/env node
// The package bin: registers tsx so the TypeScript sources run as they are
// (no build step), then hands over to the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');

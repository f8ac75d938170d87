#!/usr/bin/env node
/** `ptmst <command>`: one subcommand per pipeline stage; each takes `--json PATH`. */
import { Command } from 'commander';
import { register as features } from './commands/features';
import { register as importFeatures } from './commands/import-features';
import { register as stages, registerStep as step } from './commands/stages';

const program = new Command('ptmst')
  .description('Multimodal dataset distillation via phased teacher models (PTM-ST)')
  .showHelpAfterError()
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

for (const register of [features, importFeatures, stages, step]) register(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`ptmst: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});

/**
 * Shell completion scripts generated from commander's command tree and the settings table, so a
 * new command, flag or choice completes without touching this file.
 */
import type { Command, Option } from 'commander';
import { ALL_SETTINGS, keyOfFlag } from '../settings/index.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

interface Node {
  /** "" for the program, "topics ensure" for a subcommand. */
  path: string;
  description: string;
  subcommands: string[];
  flags: {
    flag: string;
    short?: string;
    description: string;
    choices: readonly string[] | undefined;
    takesValue: boolean;
  }[];
}

function flagsOf(options: readonly Option[]): Node['flags'] {
  return options
    .filter((o) => o.long !== undefined && !o.hidden)
    .map((o) => {
      const flag = o.long as string;
      const def = ALL_SETTINGS.get(keyOfFlag(flag.replace(/^--no-/, '--')));
      return {
        flag,
        ...(o.short ? { short: o.short } : {}),
        description: o.description,
        choices: o.argChoices ?? def?.choices,
        takesValue: o.required || o.optional,
      };
    });
}

function walk(command: Command, path: string, inherited: readonly Option[], out: Node[]): void {
  const options = [...inherited, ...command.options];
  out.push({
    path,
    description: command.description(),
    subcommands: command.commands.map((c) => c.name()),
    flags: [
      ...flagsOf(options),
      { flag: '--help', description: 'show help', choices: undefined, takesValue: false },
    ],
  });
  for (const sub of command.commands)
    walk(sub, path === '' ? sub.name() : `${path} ${sub.name()}`, options, out);
}

function tree(program: Command): Node[] {
  const nodes: Node[] = [];
  walk(program, '', [], nodes);
  return nodes;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function bash(program: Command): string {
  const nodes = tree(program);
  const name = program.name();
  const cases = nodes
    .map((n) => {
      const words = [...n.subcommands, ...n.flags.map((f) => f.flag)].join(' ');
      return `    ${quote(n.path)}) words=${quote(words)} ;;`;
    })
    .join('\n');
  const valueFlags = nodes
    .flatMap((n) => n.flags)
    .filter((f) => f.takesValue)
    .flatMap((f) => (f.short ? [f.flag, f.short] : [f.flag]));
  const choiceCases = [
    ...new Map(
      nodes
        .flatMap((n) => n.flags)
        .filter((f) => f.choices)
        .map((f) => [
          f.flag,
          `    ${f.short ? `${f.flag}|${f.short}` : f.flag}) COMPREPLY=($(compgen -W ${quote((f.choices ?? []).join(' '))} -- "$cur")); return ;;`,
        ]),
    ).values(),
  ].join('\n');
  return `# bash completion for ${name}: source it, e.g. \`source <(${name} completion bash)\`
_${name}() {
  local cur prev path="" word i words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
${choiceCases}
  esac
  local value_flags=" ${[...new Set(valueFlags)].join(' ')} "
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if [[ "$word" == -* ]]; then
      [[ "$value_flags" == *" $word "* ]] && ((i++))
      continue
    fi
    local next="\${path:+$path }$word"
    case "$next" in
${nodes.map((n) => `      ${quote(n.path)}) path="$next" ;;`).join('\n')}
    esac
  done
  case "$path" in
${cases}
  esac
  if [[ "$value_flags" == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _${name} ${name}
`;
}

function zsh(program: Command): string {
  const nodes = tree(program);
  const name = program.name();
  const cases = nodes
    .map((n) => {
      const items = [
        ...n.subcommands.map((s) => {
          const child = nodes.find((c) => c.path === (n.path === '' ? s : `${n.path} ${s}`));
          return `${s}:${(child?.description ?? '').replace(/:/g, '\\:')}`;
        }),
        ...n.flags.map((f) => `${f.flag}:${f.description.replace(/:/g, '\\:')}`),
      ];
      return `    ${quote(n.path)}) items=(${items.map(quote).join(' ')}) ;;`;
    })
    .join('\n');
  return `#compdef ${name}
# zsh completion for ${name}: \`source <(${name} completion zsh)\`, or save as _${name} in $fpath
_${name}() {
  local path="" word next
  local -a items
  for word in \${words[2,CURRENT-1]}; do
    [[ "$word" == -* ]] && continue
    next="\${path:+$path }$word"
    case "$next" in
${nodes.map((n) => `      ${quote(n.path)}) path="$next" ;;`).join('\n')}
    esac
  done
  case "$path" in
${cases}
  esac
  _describe -t commands '${name}' items
}
compdef _${name} ${name}
`;
}

function fish(program: Command): string {
  const nodes = tree(program);
  const name = program.name();
  const lines = [
    `# fish completion for ${name}: \`${name} completion fish | source\``,
    `complete -c ${name} -f`,
  ];
  for (const n of nodes) {
    const depth = n.path === '' ? [] : n.path.split(' ');
    const condition =
      depth.length === 0 ? `__fish_use_subcommand` : `__fish_seen_subcommand_from ${depth[depth.length - 1]}`;
    for (const sub of n.subcommands) {
      const child = nodes.find((c) => c.path === (n.path === '' ? sub : `${n.path} ${sub}`));
      lines.push(
        `complete -c ${name} -n ${quote(condition)} -a ${quote(sub)} -d ${quote(child?.description ?? '')}`,
      );
    }
    for (const f of n.flags) {
      const long = f.flag.replace(/^--/, '');
      const args = f.choices ? ` -x -a ${quote(f.choices.join(' '))}` : f.takesValue ? ' -r' : '';
      lines.push(`complete -c ${name} -n ${quote(condition)} -l ${long}${args} -d ${quote(f.description)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function completionScript(program: Command, shell: Shell): string {
  if (shell === 'bash') return bash(program);
  if (shell === 'zsh') return zsh(program);
  return fish(program);
}

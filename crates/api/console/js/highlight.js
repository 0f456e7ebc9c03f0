// Syntax highlighting by a small tokenizer: comments, strings, numbers and each language's
// keywords. It returns DOM nodes (never HTML strings), so script text is never interpreted.

const C_LIKE = { line: ['//'], block: [['/*', '*/']], strings: ['"', "'"] };
const HASH = { line: ['#'], block: [], strings: ['"', "'"] };

const KEYWORDS = {
  python: 'and as assert async await break class continue def del elif else except False finally for from global if import in is lambda None nonlocal not or pass raise return True try while with yield print',
  node: 'async await break case catch class const continue default delete do else export extends false finally for function if import in instanceof let new null of return super switch this throw true try typeof undefined var void while yield console require',
  ruby: 'begin break case class def defined do else elsif end ensure false for if in module next nil not or redo rescue retry return self super then true undef unless until when while yield puts require',
  go: 'break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var nil true false',
  bash: 'if then else elif fi for while until do done case esac function in return local export echo exit read select',
  c: 'auto break case char const continue default do double else enum extern float for goto if int long register return short signed sizeof static struct switch typedef union unsigned void volatile while include define',
  cpp: 'auto bool break case catch char class const constexpr continue default delete do double else enum false float for if include int long namespace new nullptr private protected public return short sizeof static std struct switch template this throw true try typename using virtual void while',
  rust: 'as async await break const continue crate else enum extern false fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait true type unsafe use where while println',
  java: 'abstract boolean break byte case catch char class continue default do double else extends final finally float for if implements import instanceof int interface long new null package private protected public return short static super switch this throw throws true false try void while String System',
  php: 'abstract and array as break case catch class const continue declare default do echo else elseif empty endforeach endif extends false final for foreach function global if implements include instanceof isset namespace new null or print private protected public require return static switch this throw true try use var while',
  perl: 'my our local sub if elsif else unless while until for foreach last next redo return use strict warnings print say package',
  lua: 'and break do else elseif end false for function goto if in local nil not or repeat return then true until while print',
};

const SYNTAX = {
  python: HASH, ruby: HASH, bash: HASH, perl: HASH,
  node: { ...C_LIKE, strings: ['"', "'", '`'] },
  go: { ...C_LIKE, strings: ['"', "'", '`'] },
  c: C_LIKE, cpp: C_LIKE, rust: { ...C_LIKE, strings: ['"'] }, java: C_LIKE,
  php: { line: ['//', '#'], block: [['/*', '*/']], strings: ['"', "'"] },
  lua: { line: ['--'], block: [['--[[', ']]']], strings: ['"', "'"] },
};

const WORD = /[A-Za-z_$][\w$]*/y;
const NUMBER = /\d[\d_]*(\.\d+)?([eE][+-]?\d+)?|0[xX][\da-fA-F]+/y;

/** Splits `text` into [kind, text] tokens; kind is '' for plain text. */
export function tokenize(text, lang) {
  const syntax = SYNTAX[lang] || HASH;
  const keywords = new Set((KEYWORDS[lang] || '').split(' '));
  const tokens = [];
  let plain = '';
  const push = (kind, s) => {
    if (plain) { tokens.push(['', plain]); plain = ''; }
    tokens.push([kind, s]);
  };
  let i = 0;
  while (i < text.length) {
    const block = syntax.block.find(([open]) => text.startsWith(open, i));
    if (block) {
      const end = text.indexOf(block[1], i + block[0].length);
      const stop = end < 0 ? text.length : end + block[1].length;
      push('comment', text.slice(i, stop));
      i = stop;
      continue;
    }
    if (syntax.line.some((m) => text.startsWith(m, i)) && !(lang === 'bash' && text.startsWith('#!', i) && i > 0)) {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      push('comment', text.slice(i, stop));
      i = stop;
      continue;
    }
    const quote = syntax.strings.find((q) => text[i] === q);
    if (quote) {
      let j = i + 1;
      while (j < text.length && text[j] !== quote && !(text[j] === '\n' && quote !== '`')) j += text[j] === '\\' ? 2 : 1;
      const stop = Math.min(j + 1, text.length);
      push('string', text.slice(i, stop));
      i = stop;
      continue;
    }
    WORD.lastIndex = i;
    const word = WORD.exec(text);
    if (word) {
      if (keywords.has(word[0])) push('keyword', word[0]); else plain += word[0];
      i += word[0].length;
      continue;
    }
    NUMBER.lastIndex = i;
    const number = /[\w$]/.test(text[i - 1] || '') ? null : NUMBER.exec(text);
    if (number) {
      push('number', number[0]);
      i += number[0].length;
      continue;
    }
    plain += text[i];
    i += 1;
  }
  if (plain) tokens.push(['', plain]);
  return tokens;
}

function node(kind, s) {
  if (!kind) return document.createTextNode(s);
  const span = document.createElement('span');
  span.className = `tok-${kind}`;
  span.textContent = s;
  return span;
}

/** The highlighted nodes of `text`. */
export function highlight(text, lang) {
  return tokenize(text, lang).map(([kind, s]) => node(kind, s));
}

/**
 * The highlighted text as one block per line (`span.line`), so that a line number can stand
 * beside the first row of each line, wrapped or not.
 */
export function highlightLines(text, lang) {
  const newLine = () => {
    const span = document.createElement('span');
    span.className = 'line';
    return span;
  };
  const lines = [newLine()];
  for (const [kind, s] of tokenize(text, lang)) {
    s.split('\n').forEach((piece, i) => {
      if (i > 0) lines.push(newLine());
      if (piece) lines[lines.length - 1].append(node(kind, piece));
    });
  }
  return lines;
}

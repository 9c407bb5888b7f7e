// Reference call sites of a TypeScript project, resolved by the TypeScript type checker.
//
//   node bench/ts_calls.mjs ROOT --src src [--src lib ...] [--tsconfig tsconfig.json] [--js] > sites.json
//
// bench/ts_calls.py runs this and compares the result with `python -m edge analyze --graph`.
//
// Method
// - A Program is built from the corpus's tsconfig compiler options (when given) over the
//   .ts/.tsx/.mts/.cts files under the --src folders; without a tsconfig, strict ESNext
//   options with bundler resolution. `types: []` keeps whatever @types happen to be
//   installed around the corpus out of the picture. With --js the .js/.cjs/.mjs files are
//   the sources (allowJs: the checker reads CommonJS `require` and `module.exports`, and
//   types from JSDoc).
// - Every file under --src (not .d.ts) is walked once, keeping a stack of the declarations
//   that are nodes of our graph, with the conventions of edge/parse/javascript.py:
//   classes (declarations, `const A = class {}`, default-exported), interfaces, enums,
//   named function declarations, functions/arrows assigned to a variable, to `exports.x`
//   or default-exported, classes and functions assigned to `module.exports` (their own
//   name, else "default") or to `exports.x` / `module.exports.x` (named x), class methods/constructors/accessors, and class fields whose
//   value is a function/arrow. Names nest by containment and join with dots; an
//   anonymous default export is "default". Namespaces, object-literal members and
//   anonymous functions are not nodes: calls inside them belong to the enclosing node.
// - Each CallExpression / NewExpression with an enclosing node is a call site. Its line
//   is the line where the callee expression starts (as in our parser). So is each JSX
//   opening or self-closing element whose tag names a component (edge/parse/jsx.py: not
//   an intrinsic `<div>` / `<my-el>`, a namespaced `<svg:rect>` or a fragment), its
//   callee the tag: `<Button />` is resolved as a call of Button, and a class component
//   as `new X()` (the checker's signature for it is the class's construct signature). The callee is
//   resolved with `checker.getResolvedSignature(call).declaration`, falling back to the
//   symbol of the callee name (aliases followed), and the declaration is classified:
//     node       a declaration that is one of our nodes (an overload signature maps to
//                the implementation of its group; an arrow/function value maps to the
//                variable or field it is assigned to)
//     interface  an interface / type-literal method signature in the project
//     abstract   an abstract method (or overload group without a body) in the project
//     value      a call through a function-typed value (parameter, property signature,
//                call/construct signature, a union receiver's member, a variable holding
//                one of several functions): no single declaration body to point at
//     anonymous  an in-project function with no node (object-literal method, closure
//                returned or passed as an argument)
//     external   declared outside the measured folders (lib.*.d.ts, .d.ts, node_modules)
//     unresolved the checker found no declaration
//   `new X()` and `super(...)`: X's constructor when X or one of its in-project base
//   classes declares one (the nearest), otherwise the class X itself. A call through a
//   variable or field that is one of our nodes goes to that node even when the checker
//   answers with its annotated type (`let f: T = () => …`); a field redeclared without a
//   value (`override fetch!: T`) goes to the base class's method (see throughValue).
// - Output: {"meta": {...}, "sites": [{path, line, caller_qualname, caller_kind, target,
//   callee_path, callee_qualnames, callee_def_line, decl_kind, overload, redeclared,
//   call_text, shape, default_import}], "nodes": [[path, qualname, kind, line]]}; paths are POSIX,
//   relative to ROOT. For targets other than "node", callee_qualnames holds a readable
//   name of the declaration (e.g. "Observer.next", "Map.clear") and callee_path its file.
//   default_import: the callee's leftmost name is a default import binding (`import X
//   from './x.js'` or `import { default as X }`; the call X(), new X(), X.m(), X.a.m()).

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const ts = require("typescript"); // bench/node_modules/typescript (bench/setup_tools.sh)

const TS_SUFFIX = /\.(ts|tsx|mts|cts)$/;
const JS_SUFFIX = /\.(js|cjs|mjs)$/;
const DTS_SUFFIX = /\.d\.(ts|mts|cts)$|\.d\.[^/]*\.ts$/;

function parseArgs(argv) {
  const args = { root: null, src: [], tsconfig: null, js: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--src") args.src.push(argv[++i]);
    else if (argv[i] === "--tsconfig") args.tsconfig = argv[++i];
    else if (argv[i] === "--js") args.js = true;
    else args.root = argv[i];
  }
  if (!args.root || args.src.length === 0) {
    console.error("usage: node ts_calls.mjs ROOT --src DIR [--src DIR ...] [--tsconfig FILE]");
    process.exit(2);
  }
  args.root = path.resolve(args.root);
  return args;
}

function walkFiles(dir, suffix, found = []) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== "node_modules") walkFiles(full, suffix, found);
    else if (entry.isFile() && suffix.test(entry.name)) found.push(full);
  }
  return found;
}

const DEFAULT_OPTIONS = {
  strict: true,
  target: ts.ScriptTarget.ESNext,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ["lib.esnext.d.ts", "lib.dom.d.ts"],
  skipLibCheck: true,
  jsx: ts.JsxEmit.ReactJSX, // .tsx sources; no effect on .ts files
};

function compilerOptions(args) {
  if (!args.tsconfig) return { ...DEFAULT_OPTIONS };
  const file = path.resolve(args.root, args.tsconfig);
  const read = ts.readConfigFile(file, ts.sys.readFile);
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(file));
  return parsed.options;
}

function buildProgram(args) {
  const srcDirs = args.src.map((d) => path.resolve(args.root, d));
  const suffix = args.js ? JS_SUFFIX : TS_SUFFIX;
  const rootNames = srcDirs.flatMap((d) => walkFiles(d, suffix)).sort();
  // The tsconfig's own file list would pull in dist/*.d.ts as well; the sources are enough.
  const options = { ...compilerOptions(args), noEmit: true, types: [], incremental: false };
  if (args.js) options.allowJs = true;
  delete options.tsBuildInfoFile;
  return { program: ts.createProgram(rootNames, options), srcDirs, rootNames };
}

// ---------------------------------------------------------------------------------------
// Our nodes, with the conventions of edge/parse/javascript.py
// ---------------------------------------------------------------------------------------

const isFunctionValue = (n) => !!n && (ts.isArrowFunction(n) || ts.isFunctionExpression(n));

// edge/parse/javascript.py's wrapped definition: `const X = f(…, () => …)` (awaited,
// parenthesised, cast; the function argument possibly in a nested call) with no node
// around it (module level, or an anonymous callback there: `describe(…, () => {…})`) is a
// function node X, unless the file declares a class X (that node is X). An interface X
// beside it (`interface X` + `const X: XCtor = f(…)`) is the same node: one node per name,
// whose calls reach the value (edge/symbols.py).
function isWrappedDefinition(node, parent) {
  if (parent || !node.parent || !ts.isVariableDeclarationList(node.parent)) return false;
  const shadowed = node.getSourceFile().statements.some((s) =>
    ts.isClassDeclaration(s) && s.name?.text === node.name.text);
  return !shadowed && holdsCallback(node.initializer);
}

function holdsCallback(value) {
  while (value && (ts.isParenthesizedExpression(value) || ts.isAwaitExpression(value)
                   || ts.isAsExpression(value) || ts.isNonNullExpression(value)
                   || (ts.isSatisfiesExpression?.(value)))) {
    value = value.expression;
  }
  if (!value || !(ts.isCallExpression(value) || ts.isNewExpression(value))) return false;
  if (ts.isIdentifier(value.expression) && value.expression.text === "require") return false;
  return (value.arguments ?? []).some((a) => isFunctionValue(a) || holdsCallback(a));
}

function isRequire(node) {
  return ts.isCallExpression(node) && ts.isIdentifier(node.expression)
    && node.expression.text === "require" && node.arguments.length === 1
    && ts.isStringLiteralLike(node.arguments[0]);
}

function memberName(member) {
  if (ts.isConstructorDeclaration(member)) return "constructor";
  return member.name ? member.name.getText() : null;
}

function exportsTarget(left, value) {
  // `exports.f = …` / `module.exports.f = …`: f; `module.exports = …`: the value's own name
  if (!ts.isPropertyAccessExpression(left)) return null;
  const object = left.expression.getText();
  if (object === "module" && left.name.getText() === "exports") return value.name?.text ?? "default";
  return object === "exports" || object === "module.exports" ? left.name.getText() : null;
}

function hasModifier(node, kind) {
  return (ts.getModifiers?.(node) ?? node.modifiers ?? []).some((m) => m.kind === kind);
}

// A node of ours declared by `node`: [kind, name, [ts nodes that stand for it]] or null.
function definitionOf(node, parent) {
  if (ts.isClassDeclaration(node)) {
    return ["class", node.name ? node.name.text : "default", [node]];
  }
  if (ts.isInterfaceDeclaration(node) || ts.isEnumDeclaration(node)) {
    return ["class", node.name.text, [node]];
  }
  if (ts.isFunctionDeclaration(node) && node.body) {
    return ["function", node.name ? node.name.text : "default", [node]];
  }
  if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer) {
    const value = node.initializer;
    if (ts.isClassExpression(value)) return ["class", node.name.text, [node, value]];
    if (isFunctionValue(value)) return ["function", node.name.text, [node, value]];
    if (isWrappedDefinition(node, parent)) return ["function", node.name.text, [node]];
    return null;
  }
  if (ts.isExportAssignment(node) && !node.isExportEquals) {
    const value = node.expression;
    if (isFunctionValue(value)) return ["function", "default", [value]];
    if (ts.isClassExpression(value)) return ["class", "default", [value]];
    return null;
  }
  if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.EqualsToken
      && (isFunctionValue(node.right) || ts.isClassExpression(node.right))) {
    const name = exportsTarget(node.left, node.right);
    const kind = ts.isClassExpression(node.right) ? "class" : "function";
    return name ? [kind, name, [node.right]] : null;
  }
  if (node.parent && ts.isClassLike(node.parent)) {
    const isMethod = (ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node)
      || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) && node.body;
    const isField = ts.isPropertyDeclaration(node) && isFunctionValue(node.initializer);
    if (isMethod || isField) {
      const name = memberName(node);
      const stands = isField ? [node, node.initializer] : [node];
      return name ? ["method", name, stands] : null;
    }
  }
  return null;
}

class Nodes {
  /** Every node of ours in the measured files, by the TS nodes that stand for it. */
  constructor(root) {
    this.root = root;
    this.byTsNode = new Map(); // the declaration, and the function value assigned to it
    this.at = new Map(); // the AST node whose extent the node spans (the caller's scope)
  }

  relative(sourceFile) {
    return path.relative(this.root, sourceFile.fileName).split(path.sep).join("/");
  }

  add(tsNode, kind, name, parent, sourceFile, stands) {
    const def = {
      kind,
      qualname: parent ? `${parent.qualname}.${name}` : name,
      path: this.relative(sourceFile),
      line: sourceFile.getLineAndCharacterOfPosition(tsNode.getStart(sourceFile)).line + 1,
    };
    for (const n of stands) this.byTsNode.set(n, def);
    this.at.set(tsNode, def);
    return def;
  }
}

// ---------------------------------------------------------------------------------------
// Resolving a call
// ---------------------------------------------------------------------------------------

class Resolver {
  constructor(checker, nodes, srcDirs) {
    this.checker = checker;
    this.nodes = nodes;
    this.srcDirs = srcDirs;
  }

  inProject(decl) {
    const file = decl.getSourceFile().fileName;
    return !DTS_SUFFIX.test(file) && !file.includes("/node_modules/")
      && this.srcDirs.some((d) => file.startsWith(d + path.sep));
  }

  symbolOf(expression) {
    let symbol = this.checker.getSymbolAtLocation(
      ts.isPropertyAccessExpression(expression) ? expression.name : expression);
    if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = this.checker.getAliasedSymbol(symbol);
    return symbol;
  }

  /** The resolution of one call, new expression or JSX element: {target, def|decl, ...}. */
  resolve(call) {
    const callee = calleeOf(call);
    if (ts.isNewExpression(call) || isJsxCall(call)) {
      const viaClass = this.constructed(this.classDeclOf(this.symbolOf(callee)));
      if (viaClass) return viaClass;
    }
    if (callee.kind === ts.SyntaxKind.SuperKeyword) {
      const viaClass = this.constructed(this.baseClassOf(enclosingClass(call)));
      if (viaClass) return viaClass;
    }
    let decl = this.checker.getResolvedSignature(call)?.declaration;
    if (decl && ts.isJSDocSignature?.(decl)) decl = undefined;
    const viaValue = this.throughValue(callee, decl);
    if (viaValue) return viaValue;
    if (!decl) {
      const symbol = this.symbolOf(callee);
      decl = symbol?.valueDeclaration ?? symbol?.declarations?.[0];
    }
    if (!decl) return { target: "unresolved" };
    return this.classify(decl);
  }

  /**
   * A call through a variable, parameter or property runs the value it holds. When the
   * variable is one of our nodes (`const f = () => …`, `let f: T = () => …`, an arrow
   * field) that is the target, whatever type annotation the checker resolves through.
   * A field redeclared without a value (`override fetch!: T`, `declare x: T`) only
   * retypes the base class's member, which is what runs. Otherwise the checker's
   * declaration is merely where the value's type came from (`const g = a ? f1 : f2`
   * resolves to f1): a call through a value, not an edge to that function.
   */
  throughValue(callee, decl) {
    if (!ts.isIdentifier(callee) && !ts.isPropertyAccessExpression(callee)) return null;
    const symbol = this.symbolOf(callee);
    if (!symbol || !(symbol.flags & (ts.SymbolFlags.Variable | ts.SymbolFlags.Property))
        || symbol.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Method | ts.SymbolFlags.Class)) {
      return null;
    }
    for (const d of symbol.declarations ?? []) {
      // (An interface merged with the const, `interface E` + `const E: ECtor`, is no value.)
      const holdsValue = ts.isVariableDeclaration(d) || ts.isPropertyDeclaration(d);
      if (holdsValue && this.nodes.byTsNode.has(d)) return this.classify(d);
      const assigned = this.assignedDefinition(d);
      if (assigned) return this.classify(assigned);
      const base = this.redeclaredMember(d);
      if (base) return { ...this.classify(base), redeclared: true };
    }
    if (!decl) return null;
    const found = this.classify(decl);
    return found.target === "node" ? { target: "value", decl } : found;
  }

  /**
   * JS: a property or CommonJS export assigned a definition, `module.exports = f`,
   * `exports.a = () => …`, `Cls.a = f`, `module.exports = { a: f }`, `module.exports =
   * require('./x')`: the node assigned (a function or class value, a name declaring one,
   * what ./x exports), which is what runs.
   */
  assignedDefinition(decl, depth = 0) {
    let value = null;
    if (ts.isPropertyAssignment(decl)) value = decl.initializer;
    else if (ts.isShorthandPropertyAssignment(decl)) value = decl.name;
    else {
      const assignment = ts.isBinaryExpression(decl) ? decl
        : decl.parent && ts.isBinaryExpression(decl.parent) && decl.parent.left === decl ? decl.parent : null;
      if (assignment?.operatorToken.kind === ts.SyntaxKind.EqualsToken) value = assignment.right;
    }
    if (!value) return null;
    if (this.nodes.byTsNode.has(value)) return value;
    if (isRequire(value)) return this.requiredDefinition(value, depth);
    if (!ts.isIdentifier(value)) return null;
    const symbol = ts.isShorthandPropertyAssignment(decl)
      ? this.checker.getShorthandAssignmentValueSymbol(decl) : this.symbolOf(value);
    return (symbol?.declarations ?? []).find((d) => this.nodes.byTsNode.has(d)) ?? null;
  }

  /** `module.exports = require('./x')`: what ./x exports as a whole, when it is a node. */
  requiredDefinition(call, depth = 0) {
    const module = this.checker.getSymbolAtLocation(call.arguments[0]);
    const exported = module && this.checker.resolveExternalModuleSymbol(module);
    for (const d of exported?.declarations ?? []) {
      if (this.nodes.byTsNode.has(d)) return d;
      const assigned = depth < 4 && this.assignedDefinition(d, depth + 1);
      if (assigned) return assigned;
    }
    return null;
  }

  redeclaredMember(decl) {
    if (!ts.isPropertyDeclaration(decl) || decl.initializer || !ts.isClassLike(decl.parent)
        || !(hasModifier(decl, ts.SyntaxKind.OverrideKeyword) || hasModifier(decl, ts.SyntaxKind.DeclareKeyword))) {
      return null;
    }
    const name = memberName(decl);
    for (let c = this.baseClassOf(decl.parent), seen = 0; c && seen < 20; c = this.baseClassOf(c), seen++) {
      const member = c.members.find((m) => memberName(m) === name && this.nodes.byTsNode.has(m));
      if (member) return member;
    }
    return null;
  }

  classDeclOf(symbol) {
    for (let decl of symbol?.declarations ?? []) {
      decl = this.assignedDefinition(decl) ?? decl; // JS: `Cls.Template = TemplateClass`
      if (ts.isClassDeclaration(decl) || ts.isClassExpression(decl)) return decl;
      if (ts.isVariableDeclaration(decl) && decl.initializer && ts.isClassExpression(decl.initializer)) {
        return decl.initializer;
      }
    }
    return null;
  }

  baseClassOf(cls) {
    const heritage = cls?.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword);
    const base = heritage?.types[0]?.expression;
    return base ? this.classDeclOf(this.symbolOf(base)) : null;
  }

  /** `new X()`: X's constructor, or the nearest in-project base class's, else X. */
  constructed(cls) {
    if (!cls) return null;
    if (!this.inProject(cls)) return this.classify(cls);
    const seen = new Set();
    for (let c = cls; c && this.inProject(c) && !seen.has(c); c = this.baseClassOf(c)) {
      seen.add(c);
      const ctor = c.members.find((m) => ts.isConstructorDeclaration(m) && m.body);
      if (ctor) return this.classify(ctor);
    }
    return this.classify(cls);
  }

  /** Map a declaration to one of our nodes, or say why it has none. */
  classify(decl) {
    if (!this.inProject(decl)) return { target: "external", decl };
    const def = this.nodes.byTsNode.get(decl);
    if (def) return { target: "node", def, decl };
    if (ts.isFunctionLike(decl) && !("body" in decl && decl.body) && isOverloadable(decl)) {
      const impl = implementationOf(decl);
      const implDef = impl && this.nodes.byTsNode.get(impl);
      if (implDef) return { target: "node", def: implDef, decl, overload: true };
      if (hasModifier(decl, ts.SyntaxKind.AbstractKeyword)) return { target: "abstract", decl };
      if (ts.isClassLike(decl.parent)) return { target: "abstract", decl };
    }
    // A method signature of an interface or object type: dispatch with no one body.
    // (Call and construct signatures are the type of a callable value: "value".)
    if (ts.isMethodSignature(decl)) return { target: "interface", decl };
    if (isFunctionValue(decl) || ts.isMethodDeclaration(decl) || ts.isFunctionDeclaration(decl)
        || ts.isGetAccessorDeclaration(decl)) {
      return { target: "anonymous", decl };
    }
    if (ts.isClassLike(decl)) return { target: "anonymous", decl };
    return { target: "value", decl };
  }
}

function isOverloadable(decl) {
  return ts.isFunctionDeclaration(decl) || ts.isMethodDeclaration(decl)
    || ts.isConstructorDeclaration(decl);
}

function implementationOf(decl) {
  // The declarations of one overload group are siblings with the same name.
  const symbol = decl.symbol; // set by the binder on every declaration
  return symbol?.declarations?.find((d) => d.kind === decl.kind && d.body) ?? null;
}

function enclosingClass(node) {
  for (let n = node.parent; n; n = n.parent) if (ts.isClassLike(n)) return n;
  return null;
}

// ---------------------------------------------------------------------------------------
// Call-site shapes (the breakdown of bench/ts_calls.py)
// ---------------------------------------------------------------------------------------

// A JSX element that renders a component: `<Button />`, `<Foo.Bar>`, `<this.Item>`; not
// what JSX passes on as a string (an identifier starting lower-case or holding a dash,
// TypeScript's isIntrinsicJsxName) nor a namespaced `<svg:rect>`.
function isJsxCall(node) {
  if (!ts.isJsxOpeningElement(node) && !ts.isJsxSelfClosingElement(node)) return false;
  const tag = node.tagName;
  if (ts.isIdentifier(tag)) return !/^[a-z]/.test(tag.text) && !tag.text.includes("-");
  return ts.isPropertyAccessExpression(tag);
}

// What a site calls: the callee expression, or a JSX element's tag.
const calleeOf = (call) => (isJsxCall(call) ? call.tagName : call.expression);

function isPlainChain(e) {
  // identifiers / this / super joined by plain `.`: what our parser records as a callee
  while (ts.isPropertyAccessExpression(e)) {
    if (e.questionDotToken || !ts.isIdentifier(e.name) && !ts.isPrivateIdentifier(e.name)) return false;
    e = e.expression;
  }
  return ts.isIdentifier(e) || e.kind === ts.SyntaxKind.ThisKeyword
    || e.kind === ts.SyntaxKind.SuperKeyword;
}

function shapeOf(call, resolver) {
  const callee = calleeOf(call);
  if (isJsxCall(call)) {
    if (!ts.isIdentifier(callee)) return "<ns.X />";
    const raw = resolver.checker.getSymbolAtLocation(callee);
    return "<X />" + (raw && raw.flags & ts.SymbolFlags.Alias ? " [imported]" : "");
  }
  const isNew = ts.isNewExpression(call);
  if (callee.kind === ts.SyntaxKind.SuperKeyword) return "super()";
  if (hasOptionalChain(callee)) return "a?.m()";
  if (ts.isCallExpression(call) && call.questionDotToken) return isPlainChain(callee) ? "f?.()" : "a?.m()";
  if (!isPlainChain(callee)) return isNew ? "new (complex)" : "complex f().m()";
  if (ts.isIdentifier(callee)) {
    const raw = resolver.checker.getSymbolAtLocation(callee);
    const imported = raw && raw.flags & ts.SymbolFlags.Alias;
    return (isNew ? "new X()" : "f()") + (imported ? " [imported]" : "");
  }
  if (isNew) return "new ns.X()";
  const receiver = callee.expression;
  if (receiver.kind === ts.SyntaxKind.ThisKeyword) return "this.m()";
  if (receiver.kind === ts.SyntaxKind.SuperKeyword) return "super.m()";
  if (ts.isPropertyAccessExpression(receiver)) {
    return receiver.expression.kind === ts.SyntaxKind.ThisKeyword ? "this.field.m()" : "a.b.m()";
  }
  return receiverShape(receiver, resolver);
}

// `import X from './x.js'` (or `import { default as X }`) and the call is X(), new X(),
// X.m() or X.a.m(): the callee is reached through a default import binding.
function viaDefaultImport(call, resolver) {
  let head = calleeOf(call);
  if (!isPlainChain(head)) return false;
  while (ts.isPropertyAccessExpression(head)) head = head.expression;
  if (!ts.isIdentifier(head)) return false;
  const raw = resolver.checker.getSymbolAtLocation(head);
  if (!raw || !(raw.flags & ts.SymbolFlags.Alias)) return false;
  return (raw.declarations ?? []).some((d) => ts.isImportClause(d)
    || (ts.isImportSpecifier(d) && (d.propertyName ?? d.name).text === "default"));
}

function hasOptionalChain(e) {
  for (; e; e = e.expression) {
    if (e.questionDotToken) return true;
    if (!("expression" in e)) return false;
  }
  return false;
}

function receiverShape(receiver, resolver) {
  const raw = resolver.checker.getSymbolAtLocation(receiver);
  const symbol = raw && raw.flags & ts.SymbolFlags.Alias ? resolver.checker.getAliasedSymbol(raw) : raw;
  if (!symbol) return "obj.m()";
  if (symbol.flags & (ts.SymbolFlags.Module | ts.SymbolFlags.ValueModule)
      && !(symbol.flags & ts.SymbolFlags.Class)) return "ns.f()";
  if (symbol.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Enum)) return "X.m() static";
  const decl = symbol.valueDeclaration ?? symbol.declarations?.[0];
  if (!decl) return "obj.m()";
  if (ts.isSourceFile(decl) || ts.isModuleDeclaration(decl)) return "ns.f()";
  // A receiver declared at module level (or imported) is a singleton-like value;
  // one declared in a function (local or parameter) needs flow typing.
  const local = ts.findAncestor(decl, (n) => ts.isFunctionLike(n) || ts.isClassStaticBlockDeclaration(n));
  return local ? "obj.m()" : "value.m() [module-level]";
}

// ---------------------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------------------

function collectNodes(sourceFiles, nodes) {
  for (const sf of sourceFiles) {
    const visit = (node, parent) => {
      const found = definitionOf(node, parent);
      const here = found ? nodes.add(node, found[0], found[1], parent, sf, found[2]) : parent;
      ts.forEachChild(node, (child) => visit(child, here));
    };
    visit(sf, null);
  }
}

function collectSites(sourceFiles, nodes, resolver) {
  const sites = [];
  for (const sf of sourceFiles) {
    const visit = (node, caller) => {
      const here = nodes.at.get(node) ?? caller;
      if ((ts.isCallExpression(node) && node.expression.kind !== ts.SyntaxKind.ImportKeyword
           || ts.isNewExpression(node) || isJsxCall(node)) && here) {
        sites.push(siteOf(node, here, sf, resolver));
      }
      // Decorators stand before the member in our parser's tree: they belong to the outer node.
      ts.forEachChild(node, (child) => visit(child, ts.isDecorator(child) ? caller : here));
    };
    visit(sf, null);
  }
  return sites;
}

function siteOf(call, caller, sf, resolver) {
  const lineOf = (n) => n.getSourceFile().getLineAndCharacterOfPosition(n.getStart()).line + 1;
  const resolved = resolver.resolve(call);
  const site = {
    path: caller.path,
    line: lineOf(calleeOf(call)),
    caller_qualname: caller.qualname,
    caller_kind: caller.kind,
    target: resolved.target,
    callee_path: null,
    callee_qualnames: [],
    callee_def_line: null,
    decl_kind: resolved.decl ? ts.SyntaxKind[resolved.decl.kind] : null,
    overload: !!resolved.overload,
    redeclared: !!resolved.redeclared,
    call_text: callText(call, sf),
    shape: shapeOf(call, resolver),
    default_import: viaDefaultImport(call, resolver),
  };
  if (resolved.def) {
    site.callee_path = resolved.def.path;
    site.callee_qualnames = [resolved.def.qualname];
    site.callee_def_line = resolved.def.line;
  } else if (resolved.decl) {
    site.callee_path = resolver.inProject(resolved.decl)
      ? resolver.nodes.relative(resolved.decl.getSourceFile())
      : path.basename(resolved.decl.getSourceFile().fileName);
    site.callee_qualnames = [describe(resolved.decl)];
    site.callee_def_line = lineOf(resolved.decl);
  }
  return site;
}

function callText(call, sf) {
  const text = call.getText(sf).replace(/\s+/g, " ");
  return text.length > 100 ? text.slice(0, 97) + "..." : text;
}

/** A readable dotted name for a declaration that is not one of our nodes. */
function describe(decl) {
  const parts = [];
  for (let n = decl; n && !ts.isSourceFile(n); n = n.parent) {
    const name = n.name && (ts.isIdentifier(n.name) || ts.isPrivateIdentifier(n.name)
      || ts.isStringLiteral(n.name)) ? n.name.text : null;
    if (ts.isConstructorDeclaration(n)) parts.push("constructor");
    else if (name && (ts.isClassLike(n) || ts.isInterfaceDeclaration(n) || ts.isModuleDeclaration(n)
      || ts.isTypeAliasDeclaration(n) || ts.isFunctionLike(n) || ts.isPropertySignature(n)
      || ts.isPropertyDeclaration(n) || ts.isVariableDeclaration(n) || ts.isParameter(n)
      || ts.isPropertyAssignment(n))) parts.push(name);
  }
  return parts.reverse().join(".") || ts.SyntaxKind[decl.kind];
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const { program, srcDirs, rootNames } = buildProgram(args);
  const checker = program.getTypeChecker();
  const measured = program.getSourceFiles().filter(
    (sf) => !DTS_SUFFIX.test(sf.fileName) && srcDirs.some((d) => sf.fileName.startsWith(d + path.sep)));
  const nodes = new Nodes(args.root);
  collectNodes(measured, nodes);
  const resolver = new Resolver(checker, nodes, srcDirs);
  const sites = collectSites(measured, nodes, resolver);
  const resolvedSeconds = (performance.now() - started) / 1000;
  // Type errors make some resolutions unreliable: count them so the report can say so.
  const diagnostics = ts.getPreEmitDiagnostics(program).filter(
    (d) => d.category === ts.DiagnosticCategory.Error && d.file
      && srcDirs.some((s) => d.file.fileName.startsWith(s + path.sep)));
  const meta = {
    typescript: ts.version,
    root: args.root,
    src: args.src,
    tsconfig: args.tsconfig,
    files: measured.length,
    root_names: rootNames.length,
    nodes: nodes.at.size,
    sites: sites.length,
    type_errors: diagnostics.length,
    type_error_examples: diagnostics.slice(0, 5).map((d) =>
      `${path.relative(args.root, d.file.fileName)}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`),
    seconds: Math.round(resolvedSeconds * 100) / 100,
  };
  // Our nodes as this walk sees them: bench/ts_calls.py checks they are the parser's.
  const walked = [...new Map([...nodes.at.values()].map((d) => [`${d.path}\0${d.qualname}`, d])).values()]
    .map((d) => [d.path, d.qualname, d.kind, d.line]);
  process.stdout.write(JSON.stringify({ meta, sites, nodes: walked }) + "\n");
}

main();

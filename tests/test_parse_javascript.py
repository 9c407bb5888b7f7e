"""parse_javascript on real source text: every import form, symbols, calls, errors."""
from __future__ import annotations

import textwrap
import time

import pytest
from hypothesis import given, settings, strategies as st

from edge.parse.javascript import parse_javascript
from edge.parse.model import Binding


def parse(source: str, language: str = "typescript", path: str = "src/a.ts"):
    return parse_javascript(path, textwrap.dedent(source).encode(), language)


def only_import(source: str, language: str = "typescript"):
    imports = parse(source, language).imports
    assert len(imports) == 1, imports
    return imports[0]


def symbols_by_qualname(parsed):
    return {s.qualname: s for s in parsed.symbols}


# ---------------------------------------------------------------------------
# Imports
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("language", ["javascript", "typescript", "tsx"])
def test_default_named_and_namespace_bindings(language):
    imp = only_import("import React, { useState as useS, useEffect } from 'react';\n", language)
    assert (imp.module, imp.kind, imp.line, imp.type_only) == ("react", "import", 1, False)
    assert imp.bindings == (Binding("React", "default"), Binding("useS", "useState"),
                            Binding("useEffect", "useEffect"))
    ns = only_import("import * as path from 'node:path'", language)
    assert ns.bindings == (Binding("path", None),)


def test_side_effect_import_has_no_bindings():
    imp = only_import("import './polyfills';")
    assert (imp.module, imp.kind, imp.bindings, imp.names) == ("./polyfills", "import", (), ())


def test_type_only_is_set_only_when_the_whole_statement_is_types():
    whole = only_import("import type { A, B } from './types';")
    inline_all = only_import("import { type A, type B } from './types';")
    mixed = only_import("import { type A, b } from './types';")
    assert whole.type_only and inline_all.type_only
    assert not mixed.type_only
    assert mixed.bindings == (Binding("A", "A"), Binding("b", "b"))


def test_re_exports_record_what_they_export():
    parsed = parse("""\
        export { a, b as c, default as D } from './x';
        export * from './star';
        export * as ns from './ns';
        export type { T } from './t';
        export const local = 1;
        export { local as other };
        """)
    by_module = {imp.module: imp for imp in parsed.imports}
    assert set(by_module) == {"./x", "./star", "./ns", "./t"}  # local exports are no imports
    assert all(imp.kind == "export" for imp in parsed.imports)
    assert by_module["./x"].bindings == (Binding("a", "a"), Binding("c", "b"), Binding("D", "default"))
    assert by_module["./star"].bindings == (Binding("*", "*"),)
    assert by_module["./ns"].bindings == (Binding("ns", None),)
    assert by_module["./t"].type_only and not by_module["./x"].type_only


@pytest.mark.parametrize("language", ["javascript", "typescript"])
def test_require_forms(language):
    parsed = parse("""\
        const fs = require('fs');
        const { join, resolve: res, sep = '/' } = require("path");
        const helper = require('./helper').helper;
        require('./side-effect');
        let dynamicName = require(name);
        const tpl = require(`./tpl`);
        const sub = require(`./x/${name}`);
        """, language)
    by_module = {imp.module: imp for imp in parsed.imports}
    assert set(by_module) == {"fs", "path", "./helper", "./side-effect", "./tpl"}
    assert all(imp.kind == "require" for imp in parsed.imports)
    assert by_module["fs"].bindings == (Binding("fs", None),)
    assert by_module["path"].bindings == (Binding("join", "join"), Binding("res", "resolve"),
                                          Binding("sep", "sep"))
    assert by_module["./helper"].bindings == (Binding("helper", "helper"),)
    assert by_module["./side-effect"].bindings == ()
    assert not any(call.callee == "require" for call in parsed.calls)


def test_typescript_import_equals_require():
    imp = only_import("import fs = require('fs');")
    assert (imp.module, imp.kind, imp.bindings) == ("fs", "require", (Binding("fs", None),))


def test_dynamic_import_with_literal_only_and_marks_deferred():
    parsed = parse("""\
        const eager = import('./eager');
        async function load(name) {
          const mod = await import(`./lazy`);
          await import('./pages/' + name);
          return require('./inner');
        }
        """)
    by_module = {imp.module: imp for imp in parsed.imports}
    assert set(by_module) == {"./eager", "./lazy", "./inner"}
    assert by_module["./eager"].kind == "dynamic" and not by_module["./eager"].in_function
    assert by_module["./lazy"].in_function and by_module["./lazy"].bindings == (Binding("mod", None),)
    assert by_module["./inner"].kind == "require" and by_module["./inner"].in_function


def test_import_types_in_type_positions_are_type_only():
    parsed = parse("""\
        type Q = import('./types').Q;
        let v: typeof import('./values');
        const real = import('./real');
        """)
    flags = {imp.module: imp.type_only for imp in parsed.imports}
    assert flags == {"./types": True, "./values": True, "./real": False}


def test_imports_come_in_line_order_with_lines():
    parsed = parse("import a from 'a'\n\nconst b = require('b')\nexport * from 'c'\n")
    assert [(imp.module, imp.line) for imp in parsed.imports] == [("a", 1), ("b", 3), ("c", 4)]


# ---------------------------------------------------------------------------
# Symbols
# ---------------------------------------------------------------------------

def test_classes_methods_and_bases():
    parsed = parse("""\
        /**
         * A widget.
         *
         * More words.
         * @deprecated use Other
         */
        export default abstract class Widget extends base.Component<Props> implements Sized, ns.Named {
          /** Draw it. */
          @memo()
          static get size() { return 1; }
          private async render(): Promise<void> { this.size; }
          onClick = () => { this.render(); };
          abstract kind(): string;
        }
        interface Sized extends Base, other.Thing<T> { size: number }
        enum Color { Red }
        """)
    symbols = symbols_by_qualname(parsed)
    assert set(symbols) == {"Widget", "Widget.size", "Widget.render", "Widget.onClick", "Sized", "Color"}
    widget = symbols["Widget"]
    assert (widget.kind, widget.start_line, widget.end_line) == ("class", 7, 14)
    assert widget.bases == ("base.Component", "Sized", "ns.Named")
    assert widget.docstring == "A widget.\n\nMore words."
    assert symbols["Widget.size"].docstring == "Draw it."
    assert all(symbols[q].kind == "method" and symbols[q].parent == "Widget"
               for q in ("Widget.size", "Widget.render", "Widget.onClick"))
    assert symbols["Sized"].bases == ("Base", "other.Thing")
    assert symbols["Color"].kind == "class"


def test_javascript_class_expressions_and_extends():
    parsed = parse("""\
        const Named = class Inner extends Base { m() {} };
        export default class extends mixin(A, B) { n() {} }
        make(class { hidden() {} });
        """, "javascript", "a.js")
    symbols = symbols_by_qualname(parsed)
    assert set(symbols) == {"Named", "Named.m", "default", "default.n", "hidden"}
    assert symbols["Named"].bases == ("Base",)
    assert symbols["default"].bases == ()  # a call is not a dotted name


def test_function_forms_and_nesting():
    parsed = parse("""\
        export function top(a) { function inner() {} const arrow = () => 1; }
        export const handler = async (event) => event;
        const expr = function named() {};
        export default function () {}
        function* gen() {}
        exports.fromExports = function () {};
        module.exports.viaModule = () => {};
        obj.notASymbol = function () {};
        callback(function passedAlong() {});
        """, "javascript", "a.js")
    symbols = symbols_by_qualname(parsed)
    # Function expressions passed as values are not declarations: no symbol.
    assert set(symbols) == {"top", "top.inner", "top.arrow", "handler", "expr", "default", "gen",
                            "fromExports", "viaModule"}
    assert symbols["top.inner"].parent == "top" and symbols["top.inner"].kind == "function"
    assert symbols["handler"].parent is None


def test_commonjs_exported_classes_and_functions_are_symbols():
    parsed = parse("""\
        const Base = require("./Base");
        /** Runs many compilers. */
        module.exports = class MultiCompiler extends Base {
          constructor(compilers) { super(); }
          run(callback) { helper(); }
        };
        exports.Plain = class { go() {} };
        module.exports.Named = class Inner extends Base.Sub { stop() {} };
        Other.notExported = class { hidden() {} };
        """, "javascript", "lib/MultiCompiler.js")
    symbols = symbols_by_qualname(parsed)
    assert set(symbols) == {"MultiCompiler", "MultiCompiler.constructor", "MultiCompiler.run",
                            "Plain", "Plain.go", "Named", "Named.stop", "hidden"}
    assert symbols["MultiCompiler"].kind == "class"
    assert symbols["MultiCompiler"].bases == ("Base",)
    assert symbols["MultiCompiler"].docstring == "Runs many compilers."
    assert (symbols["MultiCompiler"].start_line, symbols["MultiCompiler"].end_line) == (3, 6)
    assert symbols["MultiCompiler.run"].parent == "MultiCompiler"
    assert symbols["MultiCompiler.run"].kind == "method"
    assert symbols["Named"].bases == ("Base.Sub",)
    assert [c for c in parsed.calls if c.callee == "helper"][0].caller == "MultiCompiler.run"


@pytest.mark.parametrize("value, name", [
    ("class { run() {} }", "default"),
    ("class Named { run() {} }", "Named"),
    ("function build() { function run() {} }", "build"),
    ("function () { function run() {} }", "default"),
    ("() => { function run() {} }", "default"),
])
def test_whatever_module_exports_is_named_by_itself_or_default(value, name):
    parsed = parse(f"module.exports = {value};\n", "javascript", "lib/a.js")
    assert [(s.qualname, s.parent) for s in parsed.symbols] == [(name, None), (f"{name}.run", name)]
    assert [(f.scope, f.target, f.value) for f in parsed.facts] == [(None, "<exports>", name)]


def test_commonjs_exports_and_static_members_are_facts():
    parsed = parse("""\
        const Template = require("./Template");
        const { a } = require("./a");
        function format() {}
        const impl = () => 1;
        class Store {}
        Store.create = makeStore;
        Store.VERSION = 3;
        Store.build = () => new Store();
        exports.helper = function () {};
        exports.store = new Store();
        module.exports.render = Template.render;
        module.exports = { format, other: impl, "quoted": format, method() {}, ...rest };
        module.exports = require("./other");
        function later() { module.exports.inner = format; Store.late = format; }
        """, "javascript", "lib/a.js")
    assert [(f.scope, f.target, f.value) for f in parsed.facts if f.target != "<return>"] == [
        (None, "Store.create", "makeStore"),
        (None, "Store.VERSION", ""),  # untyped, still a static member
        (None, "Store.build", ""),
        (None, "<exports>.helper", "helper"),
        (None, "<exports>.store", "Store()"),
        (None, "<exports>.render", "Template.render"),
        (None, "<exports>", ""),
        (None, "<exports>.format", "format"),
        (None, "<exports>.other", "impl"),
        (None, "<exports>.quoted", "format"),
        (None, "<exports>", "module.exports"),  # a re-export: the binding of its require()
    ]


def test_a_require_assigned_to_an_export_binds_it_as_an_import():
    parsed = parse("""\
        module.exports = require("./impl");
        exports.Tool = require("./tool").Tool;
        module.exports.helper = require("./helper");
        other.x = require("./other");
        """, "javascript", "lib/index.js")
    assert [(imp.module, imp.bindings) for imp in parsed.imports] == [
        ("./impl", (Binding("module.exports", None),)),
        ("./tool", (Binding("module.exports.Tool", "Tool"),)),
        ("./helper", (Binding("module.exports.helper", None),)),
        ("./other", ()),  # not an export: no name of the module
    ]
    assert [(f.target, f.value) for f in parsed.facts if f.target.startswith("<exports>")] == [
        ("<exports>", "module.exports"), ("<exports>.Tool", "module.exports.Tool"),
        ("<exports>.helper", "module.exports.helper")]


def test_jsdoc_must_touch_the_declaration():
    parsed = parse("""\
        /** File header. */

        function far() {}
        // a line comment
        function lineCommented() {}
        /** Close. */
        export const close = () => 1;
        """)
    docs = {s.name: s.docstring for s in parsed.symbols}
    assert docs == {"far": None, "lineCommented": None, "close": "Close."}


def jsdoc_facts(source: str, language: str = "javascript", path: str = "lib/a.js"):
    parsed = parse(source, language, path)
    return {(f.scope, f.target, f.annotation) for f in parsed.facts if f.annotation}, \
        [i for i in parsed.imports if i.kind == "jsdoc"]


def test_jsdoc_types_are_annotations_in_javascript():
    facts, imports = jsdoc_facts("""\
        /** @typedef {import("../util/Hash")} Hash */
        /** @typedef {import('./x').Y.Z} Why */
        class A {
          /**
           * @param {Hash} hash described
           * @param {?Why=} [w=1] optional, with a default
           * @param {{a: number}} o an object type
           * @param {string} o.a a property: no fact
           * @param {!Array<Hash>} list
           * @param {...Hash} rest an array
           * @returns {import("./z").Z | null}
           */
          run(hash, w = 1, o, list, ...rest) {
            /** @type {Foo} */
            this.f = undefined;
            /** @type {Bar=} */
            let b;
            const c = /** @type {Baz} */ (o.x);
            return hash;
          }
          /** @type {Qux} */
          q = null;
          /** @returns {this} */
          self() { return this; }
        }
        /** @param {Hash} h */
        const g = h => h.digest();
        """)
    assert facts == {
        ("A.run", "hash", "Hash"), ("A.run", "w", "Why"), ("A.run", "o", "{a: number}"),
        ("A.run", "list", "Array<Hash>"), ("A.run", "<return>", "import$0.Z | null"),
        ("A.run", "this.f", "Foo"), ("A.run", "b", "Bar"), ("A.run", "c", "Baz"),
        ("A", "q", "Qux"), ("A.self", "<return>", "Self"), ("g", "h", "Hash")}
    assert {(i.module, i.bindings, i.type_only) for i in imports} == {
        ("../util/Hash", (Binding("Hash", None),), True),
        ("./x", (Binding("Why", "Y.Z"),), True),
        ("./z", (Binding("import$0", None),), True)}


def test_jsdoc_is_read_in_javascript_only_and_only_right_above():
    source = """\
        /** @typedef {import("./h")} Hash */
        /** @param {Hash} hash */

        function far(hash) {}
        /** @param {Hash} hash */
        function near(hash) { [1].map((x) => x); }
        """
    facts, imports = jsdoc_facts(source)
    assert facts == {("near", "hash", "Hash")} and len(imports) == 1
    assert jsdoc_facts(source, "typescript", "lib/a.ts") == (set(), [])


def test_jsdoc_import_tags_bind_as_the_import_they_spell():
    _, imports = jsdoc_facts("""\
        /** @import Hash from "../Hash" */
        /**
         * @import {
         * 	HashDigest as Encoding, Other
         * } from "./options"
         * @import * as ns from './ns'
         */
        """)
    assert {(i.module, i.bindings) for i in imports} == {
        ("../Hash", (Binding("Hash", "default"),)),
        ("./options", (Binding("Encoding", "HashDigest"), Binding("Other", "Other"))),
        ("./ns", (Binding("ns", None),))}


def test_long_docstrings_are_cut():
    parsed = parse("/** " + "word " * 200 + "*/\nfunction f() {}\n")
    assert len(parsed.symbols[0].docstring) <= 400


# ---------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------

def test_calls_have_their_enclosing_function():
    parsed = parse("""\
        setup();
        class A {
          @decorate() m() { this.helper(); a.b.c(); items.map(x => transform(x)); }
          field = compute();
        }
        function outer() {
          function inner() { deep(); }
          new Thing.Maker();
          chain()
            .then(done);
          obj[key]();
          promise
            .finally();
        }
        """)
    calls = {(c.caller, c.callee) for c in parsed.calls}
    assert calls == {
        (None, "setup"), ("A", "decorate"), ("A.m", "this.helper"), ("A.m", "a.b.c"),
        ("A.m", "items.map"), ("A.m", "transform"), ("A", "compute"), ("outer.inner", "deep"),
        ("outer", "Thing.Maker"), ("outer", "chain"), ("outer", "chain().then"),
        ("outer", "promise.finally"),
    }
    lines = {c.callee: c.line for c in parsed.calls}
    assert lines["deep"] == 7 and lines["promise.finally"] == 12


def test_jsx_and_tsx_parse_cleanly():
    jsx = parse("""\
        import Button from './Button';
        export const App = () => <div onClick={() => track('x')}><Button label="a" /></div>;
        """, "javascript", "App.jsx")
    tsx = parse("""\
        import type { Props } from './types';
        export function View({ id }: Props): JSX.Element { return <span>{format(id)}</span>; }
        const cast = <T,>(x: T) => x;
        """, "tsx", "View.tsx")
    assert jsx.error is None and tsx.error is None
    assert [s.name for s in jsx.symbols] == ["App"]
    assert ("App", "track") in {(c.caller, c.callee) for c in jsx.calls}
    assert {s.name for s in tsx.symbols} == {"View", "cast"}
    assert ("View", "format") in {(c.caller, c.callee) for c in tsx.calls}


@pytest.mark.parametrize("language", ["javascript", "tsx"])
def test_jsx_elements_naming_components_are_calls_of_them(language):
    parsed = parse("""\
        export function Page({ items }) {
          return (
            <>
              <Layout title="t">
                <Menu.Item onClick={() => track()} />
                <ui.Card.Body>{items.map((i) => <Row key={i} />)}</ui.Card.Body>
                <div className="x"><span /><my-element /><_Private /></div>
              </Layout>
            </>
          );
        }
        class Panel extends Base { render() { return <Section><Page /></Section>; } }
        """, language, "Page.tsx")
    assert parsed.error is None
    assert [(c.caller, c.callee, c.line) for c in parsed.calls] == [
        ("Page", "Layout", 4), ("Page", "Menu.Item", 5), ("Page", "track", 5),
        ("Page", "ui.Card.Body", 6), ("Page", "items.map", 6), ("Page", "Row", 6),
        ("Page", "_Private", 7), ("Panel.render", "Section", 12), ("Panel.render", "Page", 12)]


def test_intrinsic_tags_and_fragments_are_no_calls():
    parsed = parse("""\
        const View = () => <><div><svg:rect /><span>{a}</span><custom-el /></div></>;
        """, "tsx", "View.tsx")
    assert parsed.calls == []


def test_syntax_error_keeps_what_parsed():
    parsed = parse("""\
        import { a } from './a';
        export function good() { return a(); }
        function broken( {
        export class After { m() {} }
        const tail = require('./tail');
        """, "javascript", "a.js")
    assert parsed.error is not None and parsed.error.startswith("syntax error near line ")
    assert int(parsed.error.rsplit(" ", 1)[1]) >= 3
    assert {imp.module for imp in parsed.imports} == {"./a", "./tail"}
    assert "good" in {s.name for s in parsed.symbols}


def test_empty_and_garbage_input():
    empty = parse_javascript("e.js", b"", "javascript")
    assert (empty.loc, empty.symbols, empty.imports, empty.error) == (0, [], [], None)
    garbage = parse_javascript("g.ts", bytes(range(256)) * 4, "typescript")
    assert garbage.error is not None
    assert parse_javascript("x.js", b"a\nb\nc", "javascript").loc == 3


def test_triple_slash_references_and_import_options():
    parsed = parse("""\
        /// <reference path="globals.d.ts" />
        /// <reference types="node" />
        // <reference path="not-a-directive.ts" />
        const data = await import('./data.json', { with: { type: 'json' } });
        """)
    assert [(i.module, i.kind, i.type_only) for i in parsed.imports] == [
        ("./globals.d.ts", "import", True), ("./data.json", "dynamic", False)]


def test_many_decorators_before_a_definition_stay_fast():
    # A lazy pattern for decorator arguments backtracks exponentially on this.
    source = "/** Doc. */\n" + "@a(b) @c(" * 40 + ")\nclass X {}\n"
    started = time.perf_counter()
    parse(source)
    assert time.perf_counter() - started < 1.0


def test_decorated_class_keeps_its_docstring():
    parsed = parse("""\
        /** The component. */
        @Component({
          selector: 'app-root',
          template: render(items(1)),
        })
        export class AppComponent {}
        """)
    assert parsed.symbols[0].docstring == "The component."


def test_variance_annotations_parse():
    parsed = parse("""\
        export interface Cache<in out K, out V = unknown> extends Base<K> { get(k: K): V }
        export class Box<in T, out U extends string> implements Holder<T> {}
        const inside = "a <in b> string";
        export interface Shaped<
          /** @ts-ignore Cast variance */
          out Shape extends Base<string> = Base<string>, // the shape
          out Config = unknown,
        > extends Base<Shape> {}
        """)
    assert parsed.error is None
    assert {s.name: s.bases for s in parsed.symbols} == {
        "Cache": ("Base",), "Box": ("Holder",), "Shaped": ("Base",)}


def test_overloads_with_type_parameters_on_their_own_line_parse():
    # The grammar reads `A\n<B>(` as `A<B>(`; tsc never does, and neither may we.
    parsed = parse("""\
        export const dual: {
          (n: number): <A>(a: A) => Iterable<A>
          /** The data-first form. */
          <A>(a: A, n: number): Iterable<A>
          <
            A extends string
          >(a: A): A
        } = (a: any, n?: any) => helper(a)
        export function after() { return next(); }
        """)
    assert parsed.error is None
    assert {(s.name, s.start_line) for s in parsed.symbols} == {("dual", 1), ("after", 9)}
    assert {(c.caller, c.callee) for c in parsed.calls} == {("dual", "helper"), ("after", "next")}


def test_tsx_lines_starting_with_elements_are_left_alone():
    parsed = parse("""\
        export const List = ({ items }: Props) => (
          <ul>
            <li>{first(items)}</li>
            <li>{last(items)}</li>
          </ul>
        );
        """, "tsx", "List.tsx")
    assert parsed.error is None
    assert {c.callee for c in parsed.calls} == {"first", "last"}


CODE_PIECES = st.sampled_from([
    "import ", "export ", "from ", "'./a'", '"b"', "`c`", "require(", "import(", ")", "(", "{", "}",
    "class ", "A", "extends ", "function ", "f", "=>", "=", "const ", "x", ";", "\n", " ", "<", ">",
    "in ", "out ", "/** d */", "// c\n", "/// <reference path=\"r\" />\n", "@dec ", ".", ",", "*",
    "type ", "as ", "async ", "await ", "new ", "this", "`${", "\\", "\0", "é",
])


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(CODE_PIECES, max_size=60), language=st.sampled_from(["javascript", "typescript", "tsx"]))
def test_any_input_parses_without_raising_and_lines_stay_in_the_file(pieces, language):
    source = "".join(pieces).encode()
    parsed = parse_javascript("f.ts", source, language)
    last = max(parsed.loc, 1)
    assert all(1 <= s.start_line <= s.end_line <= last for s in parsed.symbols)
    assert all(s.qualname.endswith(s.name) for s in parsed.symbols)
    assert all(1 <= i.line <= last for i in parsed.imports)
    assert all(1 <= c.line <= last and c.callee for c in parsed.calls)


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    parse_javascript("b.js", data, "typescript")


def test_module_level_const_from_a_call_with_a_callback_is_a_function():
    parsed = parse("""\
        export const $ZodCheck = core.$constructor("$ZodCheck", (inst, def) => {
          util.floatSafeRemainder(1, 2);
          const inner = () => { helper(); };
        });
        const Button = React.forwardRef((props, ref) => render(props));
        const Memo = memo(function Inner() { work(); });
        const nested = memo(forwardRef(() => deep()));
        const cast = (await load(async () => fetchIt())) as Foo;
        const EMPTY = new Observable((s) => s.complete());
        const plain = compute(1);
        const tagged = css`a`;
        const f = () => g();
        function outer() { const local = debounce(() => inside()); local(); }
        """)
    symbols = symbols_by_qualname(parsed)
    assert set(symbols) == {"$ZodCheck", "$ZodCheck.inner", "Button", "Memo", "nested", "cast",
                            "EMPTY", "f", "outer"}
    assert all(symbols[q].kind == "function" for q in symbols)
    assert (symbols["$ZodCheck"].start_line, symbols["$ZodCheck"].end_line) == (1, 4)
    assert symbols["$ZodCheck.inner"].parent == "$ZodCheck"
    # The wrapping call and the calls in the callbacks have the declared name as
    # caller (X needs what makes it); inside a function nothing changes.
    assert [(c.caller, c.callee) for c in parsed.calls] == [
        ("$ZodCheck", "core.$constructor"), ("$ZodCheck", "util.floatSafeRemainder"),
        ("$ZodCheck.inner", "helper"), ("Button", "React.forwardRef"), ("Button", "render"),
        ("Memo", "memo"), ("Memo", "work"), ("nested", "memo"), ("nested", "forwardRef"),
        ("nested", "deep"), ("cast", "load"), ("cast", "fetchIt"), ("EMPTY", "Observable"),
        ("EMPTY", "s.complete"), (None, "compute"), (None, "css"), ("f", "g"),
        ("outer", "debounce"), ("outer", "inside"), ("outer", "local")]
    # The value is what the symbol returns: `EMPTY.pipe()` still reads `new Observable`.
    facts = {(f.scope, f.target, f.value) for f in parsed.facts}
    assert ("EMPTY", "<return>", "Observable()") in facts
    assert ("$ZodCheck", "<return>", "core.$constructor()") in facts
    assert (None, "plain", "compute()") in facts and ("outer", "local", "debounce()") in facts
    assert not any(f.target in ("EMPTY", "$ZodCheck") for f in parsed.facts)


def test_wrapped_definitions_in_javascript():
    parsed = parse("""\
        const handler = debounce(() => { go(); }, 100);
        export const useStore = create((set) => ({ inc: () => set(1) }));
        const m = require('./m');
        """, "javascript", "a.js")
    assert [(s.qualname, s.kind) for s in parsed.symbols] == [
        ("handler", "function"), ("useStore", "function")]
    assert [(c.caller, c.callee) for c in parsed.calls] == [
        ("handler", "debounce"), ("handler", "go"), ("useStore", "create"),
        ("useStore", "set")]


def test_namespace_members_record_their_namespace_and_export():
    parsed = parse("""\
        export namespace A.B { export function f() {} function g() {} }
        namespace N {
          export class K { m() {} }
          export namespace Inner { export const v = () => 1; }
          namespace Hidden { export function h() {} }
        }
        declare namespace D { class Implicit {} }
        declare namespace Closed { class Private {} export {} }
        function top() {}
        """)
    found = {s.qualname: (s.namespace, s.exported) for s in parsed.symbols}
    # Qualnames as without the namespace (a namespace is no node).
    assert found == {
        "f": ("A.B", True), "g": ("A.B", False), "K": ("N", True), "K.m": ("N", False),
        "v": ("N.Inner", True), "h": ("N.Hidden", False),
        "Implicit": ("D", True), "Private": ("Closed", False), "top": (None, False)}


def test_object_literal_facts_keep_properties_after_the_last_spread():
    parsed = parse("const z = { early, ...a, ...b.c, late: d.e, f() {} };\n")
    assert [(f.target, f.value) for f in parsed.facts if f.target.startswith("z")] == [
        ("z", "<object>"), ("z.*", "a"), ("z.*", "b.c"), ("z.late", "d.e")]


def test_a_for_of_variable_is_an_element_and_a_subscript_callee_takes_one():
    parsed = parse("""\
        function f(items: Item[], m: Map<string, Item>) {
          for (const item of items) item.run();
          let x;
          for (x of this.list()) {}
          for (const key in m) {}
          for (const [k, v] of m) {}
          items[items.length - 1].run();
          this.cache[key]!.get();
        }
        """)
    assert [(f.target, f.value, f.line) for f in parsed.facts if not f.annotation] == [
        ("item", "items[]", 2), ("x", "this.list()[]", 4)]
    assert [(c.callee, c.line) for c in parsed.calls] == [
        ("item.run", 2), ("this.list", 4), ("items[].run", 7), ("this.cache[].get", 8)]

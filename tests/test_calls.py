"""CALLS edges with receivers typed statically (edge/infer.py), on real files
parsed and resolved end to end (`analyze`), Python and TypeScript/JavaScript."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

from edge.analyze import analyze, graph_json
from shared.graph.model import EdgeKind, NodeKind

ROOT = Path(__file__).resolve().parents[1]


def _write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dedent(text))
    return root


def _calls(root: Path) -> dict[tuple[str, str], int]:
    """(caller, "path:callee") -> candidates, for every CALLS edge."""
    graph = analyze(root, workers=1).graph
    names = {n.id: (n.path, n.qualname or n.path) for n in graph.nodes}
    return {(names[e.src][1], f"{names[e.dst][0]}:{names[e.dst][1]}"): e.candidates
            for e in graph.edges if e.kind is EdgeKind.CALLS}


def _callees(calls: dict, caller: str) -> set[str]:
    return {callee for (src, callee) in calls if src == caller}


def _extends(root: Path) -> set[tuple[str, str]]:
    """(class, base) qualnames of every EXTENDS edge."""
    graph = analyze(root, workers=1).graph
    names = {n.id: n.qualname for n in graph.nodes}
    return {(names[e.src], names[e.dst]) for e in graph.edges if e.kind is EdgeKind.EXTENDS}


MODELS = """\
    from dataclasses import dataclass


    class Adapter:
        def send(self): ...


    class Session:
        def __init__(self, url):
            self.url = url
            self.adapter = Adapter()

        def get(self, path): ...

        def __enter__(self):
            return self

        def __exit__(self, *exc): ...

        @classmethod
        def make(cls):
            return cls("default")

        @property
        def current(self) -> "Adapter":
            return self.adapter


    class Sub(Session):
        def get(self, path):
            return super().get(path)


    @dataclass
    class Point:
        x: int

        def norm(self): ...


    class Fault(ValueError):
        def explain(self): ...


    class Handler:
        def __call__(self, event): ...


    shared = Session("shared")
"""


def _python(tmp_path: Path, client: str) -> dict:
    return _calls(_write(tmp_path, {"pkg/__init__.py": "", "pkg/models.py": MODELS,
                                    "pkg/client.py": client}))


def test_locals_typed_by_constructors_annotations_and_with_targets(tmp_path):
    calls = _python(tmp_path, """\
        from typing import Optional
        from .models import Adapter, Session, Point

        def run(url):
            session = Session(url)
            session.get("a")
            point: Point = make_point()
            point.norm()
            with Session(url) as managed:
                managed.get("b")
            unknown = url.lower()
            unknown.get("c")

        def make_point(): ...
        """)
    assert _callees(calls, "run") == {
        "pkg/models.py:Session.__init__", "pkg/models.py:Session.get",
        "pkg/models.py:Point.norm", "pkg/client.py:make_point"}


def test_parameters_and_returns_by_annotation_optional_union_and_strings(tmp_path):
    calls = _python(tmp_path, """\
        from typing import Optional, Union
        from .models import Adapter, Session, Sub

        def use(session: Optional[Session], other: "Union[Sub, Adapter]", third: Session | None):
            session.get("a")
            other.send()
            third.get("b")
            opened().get("c")
            opened_later = opened()
            opened_later.make()

        def both(thing: Union[Session, Sub]):
            thing.get("x")

        def opened() -> "Session": ...
        """)
    assert _callees(calls, "use") == {
        "pkg/models.py:Session.get", "pkg/models.py:Adapter.send", "pkg/client.py:opened",
        "pkg/models.py:Session.make"}
    # A union: an edge to each possible target, marked with how many there were.
    assert calls[("both", "pkg/models.py:Session.get")] == 2
    assert calls[("both", "pkg/models.py:Sub.get")] == 2
    assert calls[("use", "pkg/models.py:Session.get")] == 1


def test_attributes_from_init_class_annotations_properties_and_module_instances(tmp_path):
    calls = _python(tmp_path, """\
        from .models import Adapter, Session, shared

        class Client:
            session: Session

            def __init__(self):
                self.backup = Session("backup")

            def fetch(self):
                self.session.get("a")
                self.backup.adapter.send()
                self.backup.current.send()
                shared.get("b")
        """)
    assert _callees(calls, "Client.fetch") == {
        "pkg/models.py:Session.get", "pkg/models.py:Adapter.send"}
    assert calls[("Client.fetch", "pkg/models.py:Session.get")] == 1


def test_cls_super_and_aliases(tmp_path):
    calls = _python(tmp_path, """\
        from .models import Session, Sub

        class Pool(Sub):
            @classmethod
            def build(cls):
                pool = cls("x")
                return pool

            def get(self, path):
                fetch = super().get
                return fetch(path)

        def alias(session: Session):
            get = session.get
            get("a")
            made = Session.make()
            made.get("b")
            Pool.build().get("c")
        """)
    assert _callees(calls, "Pool.build") == {"pkg/models.py:Session.__init__"}
    assert _callees(calls, "Pool.get") == {"pkg/models.py:Sub.get"}
    assert _callees(calls, "alias") == {
        "pkg/models.py:Session.get", "pkg/models.py:Session.make", "pkg/client.py:Pool.build",
        "pkg/client.py:Pool.get"}


def test_a_class_call_is_its_init_or_a_bases_or_the_class_itself(tmp_path):
    calls = _python(tmp_path, """\
        from .models import Fault, Handler, Point, Sub

        def build(handler: Handler):
            Sub("x")
            Point(1)
            Fault("bad").explain()
            handler("event")
        """)
    assert _callees(calls, "build") == {
        "pkg/models.py:Session.__init__",  # Sub has none of its own: its base's runs
        "pkg/models.py:Point",  # a dataclass: no __init__ in the repository
        "pkg/models.py:Fault", "pkg/models.py:Fault.explain",
        "pkg/models.py:Handler.__call__"}  # calling an instance runs __call__


def test_function_local_imports_bind_only_in_their_function(tmp_path):
    calls = _python(tmp_path, """\
        def Session(): ...

        def local():
            from .models import Session
            Session("x").get("a")

        def module_level():
            Session()

        def pformat(value):
            from pprint import pformat
            return pformat(value)
        """)
    assert _callees(calls, "local") == {"pkg/models.py:Session.__init__",
                                        "pkg/models.py:Session.get"}
    assert _callees(calls, "module_level") == {"pkg/client.py:Session"}
    assert _callees(calls, "pformat") == set()  # the standard library's, not itself


def test_unknown_receivers_and_shadowing_names_give_no_edge(tmp_path):
    calls = _python(tmp_path, """\
        from .models import Session

        class Parser:
            def parse(self, kind):
                cls = pick(kind)
                cls()

            def wrap(self):
                def __str__(self):
                    return self.parse(1)
                return __str__

        def pick(kind): ...

        def shadowed(items):
            Session = items.get("session")
            Session.get("a")
            for session in items:
                session.get("b")
        """)
    assert _callees(calls, "Parser.parse") == {"pkg/client.py:pick"}
    assert _callees(calls, "Parser.wrap.__str__") == set()
    assert _callees(calls, "shadowed") == set()


def test_declared_types_win_and_properties_give_what_they_return(tmp_path):
    calls = _python(tmp_path, """\
        from .models import Adapter, Handler, Session, Sub

        class Holder:
            backend: Session

            def __init__(self):
                self.backend = Sub("x")

            @property
            def handler(self) -> Handler: ...

            def use(self):
                self.backend.get("a")
                chosen: Session = Sub("y")
                chosen.get("b")
                self.handler("event")
                for cls, args in ((Sub, 1),):
                    cls(args)
        """)
    assert _callees(calls, "Holder.use") == {
        "pkg/models.py:Session.get", "pkg/models.py:Handler.__call__",
        "pkg/models.py:Session.__init__"}  # Sub("y"); not Sub.get, not cls(args)


def test_module_level_values_see_only_what_is_defined_before_them(tmp_path):
    calls = _python(tmp_path, """\
        _check = isinstance

        def isinstance(value, kind):
            return _check(value, kind)
        """)
    assert _callees(calls, "isinstance") == set()


def test_typescript_receivers_from_new_fields_parameters_and_returns(tmp_path):
    root = _write(tmp_path, {
        "src/cache.ts": """\
            export class Cache { find(): void {} }
            export class Query { execute(): void {} }
            export interface Shape { area(): number }
            export interface Failure { reason: string }
            export const Failure: FailureCtor = makeError();
            """,
        "src/client.ts": """\
            import { Cache, Query, Failure } from './cache';
            export class Base { constructor(n: number) {} save(): void {} }
            export class Client extends Base {
              #cache: Cache;
              private queries = new Query();
              constructor(private readonly other: Cache) { super(1); this.#cache = new Cache(); }
              get(): Cache { return this.#cache; }
              run(q: Query | null): void {
                q?.execute();
                this.#cache.find();
                this.other.find();
                this.queries.execute();
                this.get().find();
                const c = new Cache();
                c.find();
                super.save();
                [q].forEach((item: Query) => item.execute());
                make().execute();
                throw new Failure();
              }
            }
            export function make(): Query { return new Query(); }
            export function operate(this: Client) { this.run(null); }
            """,
    })
    calls = _calls(root)
    assert _callees(calls, "Client.constructor") == {
        "src/client.ts:Base.constructor", "src/cache.ts:Cache"}
    assert _callees(calls, "Client.run") == {
        "src/cache.ts:Query.execute", "src/cache.ts:Cache.find", "src/client.ts:Client.get",
        "src/cache.ts:Cache", "src/client.ts:Base.save", "src/client.ts:make"}
    assert _callees(calls, "operate") == {"src/client.ts:Client.run"}


def test_javascript_receivers_from_new_and_this_fields(tmp_path):
    root = _write(tmp_path, {
        "lib/store.js": """\
            class Store { load() {} }
            module.exports = { Store };
            """,
        "lib/app.js": """\
            const { Store } = require('./store');
            class App {
              store = new Store();
              constructor() { this.backup = new Store(); }
              start() { this.store.load(); this.backup.load(); const s = new Store(); s.load(); }
            }
            """,
    })
    assert _callees(_calls(root), "App.start") == {"lib/store.js:Store", "lib/store.js:Store.load"}


COMMONJS = {
    "lib/template/Template.js": """\
        class Template {
          static toIdentifier(str) { return str; }
          render() {}
        }
        function unexported() {}
        module.exports = Template;
        """,
    "lib/Base.js": """\
        module.exports = class Base {
          constructor() {}
          close() {}
        };
        """,
    "lib/Compilation.js": """\
        const Base = require("./Base");
        module.exports = class Compilation extends Base {
          constructor(compiler, params) { super(); }
          seal() { this.close(); }
        };
        """,
    "lib/anonymous.js": """\
        module.exports = class {
          go() {}
        };
        """,
    "lib/helper.js": """\
        function format() {}
        function unexported() {}
        const impl = () => 1;
        module.exports = { format, other: impl, wrapped: wrap(unexported) };
        """,
    "lib/named.js": """\
        exports.format = function () {};
        module.exports.Widget = class Widget { render() {} };
        exports.Gadget = class { use() {} };
        """,
    "lib/build.js": """\
        module.exports = function build() {};
        """,
    "lib/errors.js": """\
        class HookError {
          canWrap() {}
        }
        const makeError = () => new HookError();
        HookError.makeError = makeError;
        HookError.canWrap = (error) => error.canWrap();
        module.exports = HookError;
        """,
}


def test_calls_through_commonjs_require(tmp_path):
    root = _write(tmp_path, dict(COMMONJS, **{"lib/Compiler.js": """\
        const Template = require("./template/Template");
        const Compilation = require("./Compilation");
        const helper = require("./helper");
        const named = require("./named");
        const { format, Widget } = require("./named");
        const build = require("./build");
        const Anonymous = require("./anonymous");
        const { makeError, canWrap } = require("./errors");
        const HookError = require("./errors");
        class Compiler {
          newCompilation(params) {
            const compilation = new Compilation(this, params);
            compilation.seal();
            Template.toIdentifier("x");
            helper.format();
            helper.other();
            named.format();
            format();
            const w = new Widget();
            w.render();
            new named.Gadget().use();
            build();
            new Anonymous().go();
            makeError();
          }
          unknown(Template) {
            Template.render();
            helper.unexported();
            helper.wrapped();
            HookError.canWrap();  // the static arrow, not the method
            canWrap();
          }
        }
        module.exports = Compiler;
        """}))
    calls = _calls(root)
    assert _callees(calls, "Compiler.newCompilation") == {
        "lib/Compilation.js:Compilation.constructor", "lib/Compilation.js:Compilation.seal",
        "lib/template/Template.js:Template.toIdentifier", "lib/helper.js:format",
        "lib/helper.js:impl", "lib/named.js:format", "lib/named.js:Widget",
        "lib/named.js:Widget.render", "lib/named.js:Gadget", "lib/named.js:Gadget.use",
        "lib/build.js:build", "lib/anonymous.js:default", "lib/anonymous.js:default.go",
        "lib/errors.js:makeError"}
    # Only what a module exports is reachable; `Template.render` on the class is no method.
    assert _callees(calls, "Compiler.unknown") == set()
    assert _callees(calls, "Compilation.constructor") == {"lib/Base.js:Base.constructor"}
    assert _callees(calls, "Compilation.seal") == {"lib/Base.js:Base.close"}
    assert set(calls.values()) == {1}


def test_commonjs_exported_classes_contain_their_methods_and_extend_required_bases(tmp_path):
    graph = analyze(_write(tmp_path, COMMONJS), workers=1).graph
    names = {n.id: f"{n.path}:{n.qualname or n.name}" for n in graph.nodes}
    edges = {(e.kind, names[e.src], names[e.dst]) for e in graph.edges}
    assert (EdgeKind.EXTENDS, "lib/Compilation.js:Compilation", "lib/Base.js:Base") in edges
    contained = {dst for kind, src, dst in edges
                 if kind is EdgeKind.CONTAINS and src == "lib/Compilation.js:Compilation"}
    assert contained == {"lib/Compilation.js:Compilation.constructor",
                         "lib/Compilation.js:Compilation.seal"}
    assert (EdgeKind.CONTAINS, "lib/anonymous.js:anonymous.js", "lib/anonymous.js:default") \
        in edges
    assert (EdgeKind.CONTAINS, "lib/anonymous.js:default", "lib/anonymous.js:default.go") in edges


def test_analyze_graph_prints_every_node_and_edge_as_json(tmp_path):
    root = _write(tmp_path, {"pkg/__init__.py": "", "pkg/models.py": MODELS, "pkg/client.py": """\
        from .models import Session

        def run():
            Session("x").get("a")
        """})
    printed = subprocess.run([sys.executable, "-m", "edge", "analyze", str(root), "--graph"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    graph = json.loads(printed)
    assert graph == json.loads(json.dumps(graph_json(analyze(root, workers=1).graph)))
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert set(graph["nodes"][0]) == {"id", "kind", "path", "name", "start_line", "end_line"}
    assert {n["kind"] for n in nodes.values()} == {k.value for k in NodeKind}
    calls = [(nodes[e["src"]]["name"], nodes[e["dst"]]["name"], e["line"], e["candidates"])
             for e in graph["edges"] if e["kind"] == "CALLS"]
    assert ("run", "Session.__init__", 4, 1) in calls and ("run", "Session.get", 4, 1) in calls
    imports = [e for e in graph["edges"] if e["kind"] == "IMPORTS"]
    assert imports and all("type_only" in e and "line" not in e for e in imports)


def test_typescript_wrapped_consts_and_namespace_re_exports(tmp_path):
    root = _write(tmp_path, {
        "src/core/util.ts": """\
            export function floatSafeRemainder(a: number, b: number) { return a % b; }
            export function shallowClone(x: object) { return x; }
            """,
        "src/core/core.ts": """\
            export class Box { open(): void {} }
            export function $constructor(name: string, init: (inst: any) => void): Box {
              return new Box();
            }
            """,
        "src/core/index.ts": """\
            export * as util from "./util.js";
            export { $constructor as make } from "./core.js";
            """,
        "src/core/checks.ts": """\
            import * as core from "./core.js";
            import * as util from "./util.js";
            export const $ZodCheckMultipleOf = core.$constructor("m", (inst) => {
              util.floatSafeRemainder(1, 2);
            });
            export function use() {
              $ZodCheckMultipleOf();
              $ZodCheckMultipleOf.open();
            }
            """,
        "src/classic/schemas.ts": """\
            import { util, make } from "../core/index.js";
            export function _default(x: object) { return util.shallowClone(x); }
            export function build() { make("x", () => {}); }
            """,
    })
    calls = _calls(root)
    # X needs what makes it: the wrapping call is X's too.
    assert _callees(calls, "$ZodCheckMultipleOf") == {
        "src/core/util.ts:floatSafeRemainder", "src/core/core.ts:$constructor"}
    # X() is the node; X.m() reads the value the wrapping call returns.
    assert _callees(calls, "use") == {
        "src/core/checks.ts:$ZodCheckMultipleOf", "src/core/core.ts:Box.open"}
    assert _callees(calls, "_default") == {"src/core/util.ts:shallowClone"}
    assert _callees(calls, "build") == {"src/core/core.ts:$constructor"}


def test_typescript_interface_and_value_of_one_name_resolve_by_space(tmp_path):
    root = _write(tmp_path, {
        "src/core.ts": """\
            export class Base { hello(): void {} }
            export interface Factory<T> { new (def: object): T; init(inst: T): void; }
            export function factory<T>(name: string, init: (inst: T) => void): Factory<T> {
              function inner() {}
              return null as any;
            }
            """,
        "src/schemas.ts": """\
            import * as core from "./core.js";
            export interface Schema extends core.Base { tag: string }
            export const Schema: core.Factory<Schema> = core.factory("Schema", (inst) => {
              const runChecks = () => 1;
              const handle = () => runChecks();
            });
            export interface Str extends Schema {}
            export const Str = core.factory<Str>("Str", (inst) => { Schema.init(inst); });
            interface Merged { extra(): void }
            class Merged { constructor() {} run() {} }
            export function make(s: Str, t: typeof Schema) {
              new Str({});
              s.hello();
              t({});
              new Merged().run();
            }
            """,
    })
    graph = analyze(root, workers=1).graph
    kinds = {n.qualname: n.kind for n in graph.nodes if n.path == "src/schemas.ts"}
    # One node per name, its qualname as before: the value's kind, over both declarations.
    assert kinds["Schema"] is NodeKind.FUNCTION and kinds["Merged"] is NodeKind.CLASS
    calls = _calls(root)
    # Calls and `new` reach the value; annotations and `extends` name the interface;
    # `typeof Schema` types any function of Schema's type (no edge).
    assert _callees(calls, "make") == {
        "src/schemas.ts:Str", "src/core.ts:Base.hello",
        "src/schemas.ts:Merged.constructor", "src/schemas.ts:Merged.run"}
    assert _callees(calls, "Schema.handle") == {"src/schemas.ts:Schema.runChecks"}
    # `Schema.init` is the interface's method signature: no body, and a function's inner
    # definitions are no members of its value; the wrapping call is Str's own.
    assert _callees(calls, "Str") == {"src/core.ts:factory"}


def test_export_star_from_several_modules(tmp_path):
    root = _write(tmp_path, {
        "src/a.ts": "export function fromA() {}\nexport function both() {}\n",
        "src/b.ts": """\
            export function fromB() {}
            export function both() {}
            export default function main() {}
            export class Base { static make() {} }
            export class Derived extends Base {}
            """,
        "src/index.ts": "export * from './a';\nexport * from './b';\nexport * from './a';\n",
        "src/use.ts": """\
            import { fromA, fromB, both, Derived } from './index';
            import * as ns from './index';
            import main from './index';
            export class Own extends ns.Base {}
            export function run() { fromA(); fromB(); ns.fromB(); Derived.make(); }
            export function ambiguous() { both(); ns.both(); main(); }
            """,
    })
    calls = _calls(root)
    assert _callees(calls, "run") == {
        "src/a.ts:fromA", "src/b.ts:fromB", "src/b.ts:Base.make"}
    # Two star sources export `both`: neither is it; `export *` passes on no default.
    assert _callees(calls, "ambiguous") == set()
    assert ("Own", "Base") in _extends(root)


def test_a_typescript_array_annotation_types_no_element(tmp_path):
    """`items: Item[]` holds an array: `items.map()` is Array's, not Item.map."""
    root = _write(tmp_path, {
        "src/item.ts": "export class Item { map() {} run() {} }\n",
        "src/use.ts": """\
            import { Item } from './item';
            export function all(items: Item[], one: Item, many: Array<Item>) {
              items.map(); one.run(); many.map();
            }
            """,
    })
    assert _callees(_calls(root), "all") == {"src/item.ts:Item.run"}


def test_an_es_modules_own_names_exported_under_another_name(tmp_path):
    """`export default a`, `export default function a`, `export default class A` and
    `export { a as b }` name the module's own definitions: an importer's default or
    renamed import reaches them (calls, `new`, statics, bases), re-exported too."""
    root = _write(tmp_path, {
        "src/get.js": """\
            import baseGet from './_baseGet.js';
            function get(object, path) { return baseGet(object, path); }
            export default get;
            """,
        "src/_baseGet.js": "function baseGet(o, p) { return o[p]; }\nexport default baseGet;\n",
        "src/zone.js": "export default class Zone { static utc() {} name() {} }\n",
        "src/iana.js": """\
            import Zone from './zone.js';
            export default class IANAZone extends Zone {}
            """,
        "src/helpers.js": """\
            export default function pad(s) { return s; }
            function trim(s) { return s; }
            const notAName = 1;
            export { trim as strip, notAName as "odd name" };
            """,
        "src/index.js": "export { default as get } from './get.js';\n",
        "src/use.js": """\
            import get from './get.js';
            import Zone from './zone.js';
            import IANAZone from './iana.js';
            import pad, { strip } from './helpers.js';
            import * as helpers from './helpers.js';
            import { get as viaIndex } from './index.js';
            export function run() {
              get({}, 'a'); Zone.utc(); new IANAZone(); pad('x'); strip('y');
              helpers.strip('z'); helpers.default('w'); viaIndex({}, 'b');
            }
            export function trim() { strip(' '); }
            """,
    })
    calls = _calls(root)
    assert _callees(calls, "get") == {"src/_baseGet.js:baseGet"}
    assert _callees(calls, "run") == {
        "src/get.js:get", "src/zone.js:Zone.utc", "src/iana.js:IANAZone",
        "src/helpers.js:pad", "src/helpers.js:trim"}
    # The file's own `trim` is not the imported one's alias: `strip` still reaches helpers.
    assert _callees(calls, "trim") == {"src/helpers.js:trim"}
    assert ("IANAZone", "Zone") in _extends(root)


def test_jsx_elements_call_the_components_they_name(tmp_path):
    """`<Button />` calls Button: default and named imports, re-exports, a namespace
    import, `forwardRef`/`memo` wrapped consts, and class components (their
    constructor, else the class, as `new X()`); intrinsic tags call nothing."""
    root = _write(tmp_path, {
        "src/Button.tsx": """\
            import { forwardRef } from 'react';
            const Button = forwardRef((props, ref) => <button ref={ref} {...props} />);
            export default Button;
            """,
        "src/Icon.tsx": "export function Icon() { return <svg />; }\n",
        "src/Card.tsx": """\
            import { memo } from 'react';
            export const Card = memo(function Card({ children }) { return <div>{children}</div>; });
            export function CardBody() { return <div />; }
            """,
        "src/Dialog.tsx": """\
            import * as React from 'react';
            export class Dialog extends React.Component { render() { return <div />; } }
            export class Modal extends React.Component {
              constructor(props) { super(props); }
              render() { return <Dialog />; }
            }
            """,
        "src/index.ts": "export { Icon } from './Icon';\nexport * as cards from './Card';\n",
        "src/Page.jsx": """\
            import Button from './Button';
            import { Icon, cards } from './index';
            import { Dialog, Modal } from './Dialog';
            export default function Page() {
              return (
                <Modal>
                  <Button><Icon /></Button>
                  <cards.Card><cards.CardBody /></cards.Card>
                  <Dialog />
                </Modal>
              );
            }
            """,
    })
    calls = _calls(root)
    assert _callees(calls, "Page") == {
        "src/Button.tsx:Button", "src/Icon.tsx:Icon", "src/Card.tsx:Card",
        "src/Card.tsx:CardBody", "src/Dialog.tsx:Dialog", "src/Dialog.tsx:Modal.constructor"}
    assert _callees(calls, "Modal.render") == {"src/Dialog.tsx:Dialog"}
    assert _callees(calls, "Icon") == set() and _callees(calls, "Button") == set()


def test_commonjs_re_export_of_a_required_module(tmp_path):
    root = _write(tmp_path, {
        "lib/impl.js": """\
            class Impl { go() {} static build() {} }
            module.exports = Impl;
            """,
        "lib/index.js": "module.exports = require('./impl');\n",
        "lib/named.js": """\
            exports.Impl = require('./impl');
            exports.build = require('./impl').build;
            """,
        "lib/use.js": """\
            const Impl = require('./index');
            const named = require('./named');
            const { build } = require('./named');
            class Sub extends Impl {}
            function run() { new Impl().go(); Impl.build(); new named.Impl().go(); build(); }
            module.exports = { run, Sub };
            """,
    })
    calls = _calls(root)
    assert _callees(calls, "run") == {
        "lib/impl.js:Impl", "lib/impl.js:Impl.go", "lib/impl.js:Impl.build"}
    assert ("Sub", "Impl") in _extends(root)


def test_jsdoc_types_type_receivers_in_javascript(tmp_path):
    root = _write(tmp_path, {
        "lib/util/Hash.js": """\
            class Hash { update(data) { return this; } digest() {} }
            module.exports = Hash;
            """,
        "lib/cache.js": """\
            class Cache { get() {} }
            class Entry { touch() {} }
            module.exports = { Cache, Entry };
            """,
        "lib/digest.js": """\
            /** @import Hash from "./util/Hash" */
            /** @typedef {import("./cache").Cache} Cache */

            /**
             * @param {Hash} hash the hash
             * @param {Cache | null} [cache] optional
             * @param {import("./cache").Entry=} entry inline import type
             * @returns {Hash} the same
             */
            function digest(hash, cache, entry) {
              hash.update("x");
              cache.get();
              entry.touch();
              return hash;
            }
            function chained(h) { digest(h).digest(); }
            /** @param {Hash[]} hashes a container gives nothing */
            function many(hashes) { hashes.update(); }
            class Holder {
              constructor() {
                /** @type {Hash | undefined} */
                this.hash = undefined;
              }
              /** @type {?Cache} */
              cache = null;
              run() { this.hash.digest(); this.cache.get(); }
            }
            module.exports = { digest, chained, many, Holder };
            """,
        "lib/other.js": """\
            /** @typedef {import("./util/Hash")} Hash */
            /** @param {Hash} hash */
            function other(hash) { hash.digest(); }
            module.exports = other;
            """,
        "lib/typed.ts": """\
            /** @param {Hash} hash ignored: TypeScript has its own annotations */
            export function inTs(hash) { hash.update(); }
            """,
    })
    calls = _calls(root)
    assert _callees(calls, "digest") == {
        "lib/util/Hash.js:Hash.update", "lib/cache.js:Cache.get", "lib/cache.js:Entry.touch"}
    assert _callees(calls, "chained") == {"lib/digest.js:digest", "lib/util/Hash.js:Hash.digest"}
    assert _callees(calls, "many") == set()
    assert _callees(calls, "Holder.run") == {
        "lib/util/Hash.js:Hash.digest", "lib/cache.js:Cache.get"}
    assert _callees(calls, "inTs") == set()
    assert _callees(calls, "other") == {"lib/util/Hash.js:Hash.digest"}
    graph = analyze(root, workers=1).graph
    paths = {n.id: n.path for n in graph.nodes}
    # JSDoc import types name modules for typing only: no IMPORTS edge.
    assert ("lib/digest.js", "lib/util/Hash.js") not in {
        (paths[e.src], paths[e.dst]) for e in graph.edges if e.kind is EdgeKind.IMPORTS}


def test_javascript_static_members_are_inherited(tmp_path):
    root = _write(tmp_path, {"lib/a.js": """\
        class A { static inBody() {} }
        function assigned() {}
        function shadowed() {}
        A.assigned = assigned;
        A.shadowed = shadowed;
        class B extends A {}
        class C extends B { static shadowed() {} }
        function run() { B.inBody(); B.assigned(); C.assigned(); C.shadowed(); }
        function instances() { new B().assigned(); }
        module.exports = { run, instances };
        """})
    calls = _calls(root)
    assert _callees(calls, "run") == {
        "lib/a.js:A.inBody", "lib/a.js:assigned", "lib/a.js:C.shadowed"}
    assert _callees(calls, "instances") == {"lib/a.js:B"}  # a static is no instance member


def test_typescript_namespace_members_are_reached_through_the_namespace(tmp_path):
    root = _write(tmp_path, {
        "src/util.ts": """\
            export namespace errorUtil {
              export type Message = string;
              export const errToObj = (m?: Message) => ({ message: m });
              export function toString(m?: Message) { return errToObj(m).message; }
              function hidden() {}
              export namespace deep { export function leaf() {} }
            }
            export namespace A.B { export class Base { hello() {} } }
            export class Merged { static own() {} }
            export namespace Merged { export function extra() {} }
            export enum Color { Red }
            export namespace Color { export function parse(s: string) {} }
            export declare namespace Ambient { class Implicit {} }
            declare namespace Closed { class Private {} export {} }
            export namespace Outer { namespace Inner { export function unseen() {} } }
            """,
        "src/use.ts": """\
            import { errorUtil, A, Merged, Color, Ambient } from "./util";
            export class Sub extends A.B.Base {}
            export function run(b: A.B.Base) {
              errorUtil.errToObj();
              errorUtil.toString();
              errorUtil.hidden();
              errorUtil.deep.leaf();
              b.hello();
              Merged.extra();
              Merged.own();
              Color.parse("red");
              new Ambient.Implicit();
            }
            """,
        "src/same.ts": """\
            import { Closed, Outer } from "./util";
            namespace local { export function f() {} }
            export function here() { local.f(); new Closed.Private(); Outer.Inner.unseen(); }
            """,
    })
    calls = _calls(root)
    # Exported members only (`export` decides; a `declare namespace` exports all unless
    # it has an `export {}`); nested namespaces by their dotted names; a class or enum
    # merged with a namespace has its members as its own.
    assert _callees(calls, "run") == {
        "src/util.ts:errToObj", "src/util.ts:toString", "src/util.ts:leaf",
        "src/util.ts:Base.hello", "src/util.ts:extra", "src/util.ts:Merged.own",
        "src/util.ts:parse", "src/util.ts:Implicit"}
    assert _callees(calls, "toString") == {"src/util.ts:errToObj"}
    assert _callees(calls, "here") == {"src/same.ts:f"}
    assert ("Sub", "Base") in _extends(root)
    graph = analyze(root, workers=1).graph
    # A namespace is no node; its members keep the qualnames they had (stable ids).
    assert {n.qualname for n in graph.nodes if n.path == "src/util.ts"} >= {
        "errToObj", "toString", "hidden", "leaf", "Base", "Base.hello", "extra", "Implicit"}
    assert "errorUtil" not in {n.qualname for n in graph.nodes}


def test_members_of_an_object_literal_and_its_spreads(tmp_path):
    root = _write(tmp_path, {
        "src/schemas.ts": "export function any() {}\nexport function string() {}\n",
        "src/checks.ts": "export function regex() {}\nexport function string() {}\n",
        "src/iso.ts": "export function date() {}\n",
        "src/use.ts": """\
            import * as _schemas from "./schemas";
            import * as _checks from "./checks";
            import * as _iso from "./iso";
            import { external } from "left-pad";
            function own() {}
            function early() {}
            const z = { early, ..._schemas, ..._checks, iso: _iso, own };
            const opaque = { ..._schemas, ...external };
            export function run() {
              z.any(); z.regex(); z.string(); z.iso.date(); z.own(); z.early();
              opaque.any();
            }
            """,
    })
    calls = _calls(root)
    # The last spread that has a name wins; a property before a spread may be replaced
    # by it, and a spread of an unknown value may hold any name: no edge.
    assert _callees(calls, "run") == {
        "src/schemas.ts:any", "src/checks.ts:regex", "src/checks.ts:string",
        "src/iso.ts:date", "src/use.ts:own"}


def test_python_elements_of_typed_containers_through_loops_and_subscripts(tmp_path):
    calls = _python(tmp_path, """\
        from typing import Iterator, List, Sequence

        from pkg.models import Adapter, Point, Session


        class Pool:
            sessions: list[Session]

            def __init__(self, adapters: List[Adapter]):
                self.adapters = adapters

            def all(self) -> Sequence[Point]: ...

            def walk(self) -> Iterator["Session"]: ...

            def run(self):
                for s in self.sessions:
                    s.get("/")
                for a in self.adapters:
                    a.send()
                for p in self.all():
                    p.norm()
                for w in self.walk():
                    w.make()
                self.sessions[0].get("/")
                self.sessions.append(None)


        def loose(points: tuple[Point, ...], pairs: tuple[Point, Session],
                  names: dict[str, Session], many: set[type[Session]]):
            for p in points:
                p.norm()
            for x in pairs:
                x.get("/")
            names["a"].get("/")
            points[1:].norm()
            for cls in many:
                cls.make()
            for i, q in enumerate(points):
                q.norm()
        """)
    assert _callees(calls, "Pool.run") == {
        "pkg/models.py:Session.get", "pkg/models.py:Adapter.send", "pkg/models.py:Point.norm",
        "pkg/client.py:Pool.all", "pkg/client.py:Pool.walk", "pkg/models.py:Session.make"}
    assert _callees(calls, "loose") == {"pkg/models.py:Point.norm", "pkg/models.py:Session.make"}


def test_typescript_and_jsdoc_elements_of_arrays_through_loops_and_subscripts(tmp_path):
    """`Item[]`, `Array<Item>`, `Set<Item>`, a field, a return type: `for…of` and `xs[i]`
    give an Item; the array's own methods (`items.map()`) give nothing."""
    root = _write(tmp_path, {
        "src/item.ts": "export class Item { map() {} run() {} }\n",
        "src/use.ts": """\
            import { Item } from './item';
            export class Box {
              private items: readonly Item[] = [];
              list(): Array<Item> { return []; }
              get all(): Iterable<Item> { return this.items; }
              each(set: Set<Item>, keys: Map<string, Item>) {
                for (const a of this.items) a.run();
                for (const g of this.all) g.map();
                for (const b of this.list()) { b.run(); }
                for (const c of set) c.run();
                for (const k in keys) k.run();
                this.items[0].run();
                this.items.map();
              }
            }
            export function loose(items: Item[] | undefined) {
              let x;
              for (x of items!) x.run();
              items?.map();
            }
            """,
        "lib/holder.js": """\
            const { Item } = require("../src/item");
            class Holder {
              constructor() {
                /** @type {Item[]} */
                this._items = [];
              }
              /** @param {Array.<Item>} more */
              run(more) {
                for (const item of this._items) item.run();
                more[more.length - 1].run();
              }
            }
            module.exports = Holder;
            """,
    })
    calls = _calls(root)
    assert _callees(calls, "Box.each") == {
        "src/item.ts:Item.run", "src/item.ts:Item.map", "src/use.ts:Box.list"}
    assert _callees(calls, "loose") == {"src/item.ts:Item.run"}
    assert _callees(calls, "Holder.run") == {"src/item.ts:Item.run"}

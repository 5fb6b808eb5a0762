#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Renders the committed chat templates over the committed conversations with
Jinja2 set up as transformers' apply_chat_template sets it up, and writes the
outputs as goldens for the C++ engine (tests/unit/generation/chat_template_test.cc
compares byte for byte).

transformers (src/transformers/utils/chat_template_utils.py) compiles a chat
template with ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[its {% generation %} tracker,
jinja2.ext.loopcontrols]), replaces the `tojson` filter by json.dumps with
ensure_ascii=False, adds the globals raise_exception and strftime_now, and
renders with messages, tools=None, documents=None, add_generation_prompt and
the tokenizer's special tokens. This script does the same (the generation tag
renders its body, as transformers' does when not tracking).

Needs Debian's python3-jinja2. Run from the repository root:
  /usr/bin/python3 scripts/generation/make_chat_template_goldens.py
"""
import json
import pathlib
import sys

import jinja2
import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

DATA = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "chat_templates"

# The special tokens each template is rendered with.
TOKENS = {
    "chatml": ("", "<|im_end|>"),
    "llama2": ("<s>", "</s>"),
    "zephyr": ("", "</s>"),
    "namespace": ("<|begin|>", "<|end|>"),
    "loop_last": ("<s>", "</s>"),
    "features": ("<s>", "</s>"),
}


class GenerationTag(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %}: the body, rendered in place."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                       extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def main():
    if jinja2.__version__.split(".")[:2] < ["3", "1"]:
        sys.exit(f"jinja2 >= 3.1 needed (transformers requires it), found {jinja2.__version__}")
    env = environment()
    conversations = json.loads((DATA / "conversations.json").read_text(encoding="utf-8"))
    cases = []
    for name in sorted(TOKENS):
        source = (DATA / f"{name}.jinja").read_text(encoding="utf-8")
        template = env.from_string(source)
        bos, eos = TOKENS[name]
        for conversation in sorted(conversations):
            for add_generation_prompt in (False, True):
                case = {"template": name, "conversation": conversation, "add_generation_prompt": add_generation_prompt,
                        "bos_token": bos, "eos_token": eos}
                try:
                    case["output"] = template.render(messages=conversations[conversation], tools=None,
                                                     documents=None, add_generation_prompt=add_generation_prompt,
                                                     bos_token=bos, eos_token=eos)
                except TemplateError as e:
                    if type(e) is not TemplateError:
                        raise  # a template bug, not raise_exception
                    case["raised"] = str(e)
                cases.append(case)
    # Small templates, one construct or a few each, over one conversation.
    snippets = []
    for source in json.loads((DATA / "snippets.json").read_text(encoding="utf-8")):
        case = {"source": source}
        try:
            case["output"] = env.from_string(source).render(
                messages=conversations["system_and_turns"], tools=None, documents=None, add_generation_prompt=True,
                bos_token="<s>", eos_token="</s>")
        except jinja2.TemplateError as e:
            case["error"] = f"{type(e).__name__}: {e}"
        snippets.append(case)
    out = {"generator": f"scripts/generation/make_chat_template_goldens.py, jinja2 {jinja2.__version__}",
           "cases": cases, "snippets": snippets}
    (DATA / "goldens.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(cases)} cases, {sum('raised' in c for c in cases)} raising, {len(snippets)} snippets, "
          f"{sum('error' in c for c in snippets)} failing")


if __name__ == "__main__":
    main()

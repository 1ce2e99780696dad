"""The seed recipe's hand-written format, copied from ../shared/seed (for comparison only).

The chat template is built exactly as the seed builds it: a Jinja string with
placeholders glued in by ``str.replace``. Tests render it next to the spec-generated
template and require byte-identical output.
"""

reasoning_start = "<start_working_out>"  # Acts as <think>
reasoning_end = "<end_working_out>"  # Acts as </think>
solution_start = "<SOLUTION>"
solution_end = "</SOLUTION>"

system_prompt = f"""You are given a problem.
Think about the problem and provide your working out.
Place it between {reasoning_start} and {reasoning_end}.
Then, provide your solution between {solution_start}{solution_end}"""


def seed_chat_template(system_prompt: str = system_prompt, reasoning_start: str = reasoning_start) -> str:
    chat_template = (
        "{% if messages[0]['role'] == 'system' %}"
        "{{ messages[0]['content'] + eos_token }}"
        "{% set loop_messages = messages[1:] %}"
        "{% else %}"
        "{{ '{system_prompt}' + eos_token }}"
        "{% set loop_messages = messages %}"
        "{% endif %}"
        "{% for message in loop_messages %}"
        "{% if message['role'] == 'user' %}"
        "{{ message['content'] }}"
        "{% elif message['role'] == 'assistant' %}"
        "{{ message['content'] + eos_token }}"
        "{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '{reasoning_start}' }}"
        "{% endif %}"
    )
    # Replace with out specific template:
    return chat_template.replace("'{system_prompt}'", f"'{system_prompt}'").replace(
        "'{reasoning_start}'", f"'{reasoning_start}'"
    )


# The example the seed prints, with its rendering (the article's output, verbatim).
SEED_EXAMPLE_MESSAGES = [
    {"role": "user", "content": "What is 1+1?"},
    {"role": "assistant", "content": f"{reasoning_start}I think it's 2.{reasoning_end}{solution_start}2{solution_end}"},
    {"role": "user", "content": "What is 2+2?"},
]
SEED_EXAMPLE_RENDERED = (
    "You are given a problem.\nThink about the problem and provide your working out.\n"
    "Place it between <start_working_out> and <end_working_out>.\n"
    "Then, provide your solution between <SOLUTION></SOLUTION><|endoftext|>What is 1+1?<start_working_out>"
    "I think it's 2.<end_working_out><SOLUTION>2</SOLUTION><|endoftext|>What is 2+2?<start_working_out>"
)

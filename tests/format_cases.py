"""One table of completions for the working_out spec, with the expected verdicts.

Drives the validator, the reward regex (and the rewards) so they cannot disagree
unnoticed. Each case: (id, completion, valid, error codes in order, extracted answer).
"""

R0, R1, S0, S1 = "<start_working_out>", "<end_working_out>", "<SOLUTION>", "</SOLUTION>"
EOS = "<|endoftext|>"

CASES = [
    # --- valid ---
    ("minimal", f"think{R1}{S0}2{S1}", True, (), "2"),
    ("with start tag", f"{R0}think{R1}{S0}2{S1}", True, (), "2"),
    ("eos", f"think{R1}{S0}2{S1}{EOS}", True, (), "2"),
    ("chatml eos", f"think{R1}{S0}2{S1}<|im_end|>", True, (), "2"),
    ("whitespace everywhere", f"\n think \n{R1}\n\n{S0} 42 {S1}\n {EOS}\n", True, (), "42"),
    ("thousands", f"t{R1}{S0}1,000{S1}", True, (), "1,000"),
    ("negative decimal", f"t{R1}{S0}-3.25{S1}", True, (), "-3.25"),
    ("plus sign", f"t{R1}{S0}+7{S1}", True, (), "+7"),
    ("unicode reasoning", f"Überlegung: 2×2 = 4 ✓ 𝄞{R1}{S0}4{S1}", True, (), "4"),
    ("reasoning with lower-case tag lookalike", f"see <solution> later{R1}{S0}4{S1}", True, (), "4"),
    # --- empty / truncated ---
    ("empty", "", False, ("empty",), None),
    ("whitespace only", " \n\t", False, ("empty",), None),
    ("truncated in reasoning", f"{R0}I am thinking", False, ("truncated",), None),
    ("truncated mid tag", "thinking <end_work", False, ("truncated",), None),
    ("truncated after reasoning", f"think{R1}\n", False, ("truncated",), None),
    ("truncated in solution start", f"think{R1}<SOLU", False, ("truncated",), None),
    ("truncated in answer", f"think{R1}{S0}4", False, ("truncated",), None),
    # --- missing pieces (the model stopped: EOS present) ---
    ("no reasoning end", f"think{EOS}", False, ("missing_reasoning_end",), None),
    ("no reasoning end with solution", f"think{S0}4{S1}", False, ("missing_reasoning_end",), "4"),
    ("no solution start", f"think{R1} the answer is 4", False, ("missing_solution_start",), None),
    ("no solution end", f"think{R1}{S0}4{EOS}", False, ("missing_solution_end",), None),
    ("no solution start, case", f"t{R1}<solution>4</solution>", False,
     ("missing_solution_start", "tag_case_mismatch", "tag_case_mismatch"), None),
    # --- bad contents ---
    ("empty reasoning", f"{R0}  \n{R1}{S0}4{S1}", False, ("empty_reasoning",), "4"),
    ("empty answer", f"t{R1}{S0}  {S1}", False, ("empty_answer",), None),
    ("answer words", f"t{R1}{S0}four{S1}", False, ("answer_not_a_number",), None),
    ("answer two numbers", f"t{R1}{S0}4 5{S1}", False, ("answer_not_a_number",), None),
    ("answer with unit", f"t{R1}{S0}$4{S1}", False, ("answer_not_a_number",), None),
    ("bad thousands", f"t{R1}{S0}1,0000{S1}", False, ("answer_not_a_number",), None),
    ("tag in reasoning", f"t {S0}x{S1} t{R1}{S0}4{S1}", False, ("tag_in_reasoning", "tag_in_reasoning"), None),
    ("reasoning start again", f"{R0}a{R0}b{R1}{S0}4{S1}", False, ("tag_in_reasoning",), "4"),
    ("text before reasoning start", f"Sure! {R0}a{R1}{S0}4{S1}", False, ("text_before_reasoning_start",), "4"),
    ("tag in answer", f"t{R1}{S0}4{R1}{S1}", False, ("tag_in_answer",), None),
    # --- between / after the blocks ---
    ("text between blocks", f"t{R1} so {S0}4{S1}", False, ("text_between_blocks",), "4"),
    ("trailing text", f"t{R1}{S0}4{S1} done", False, ("trailing_text",), "4"),
    ("trailing text later line", f"t{R1}{S0}4{S1}\n\nAnything else?", False, ("trailing_text",), "4"),
    ("text after eos", f"t{R1}{S0}4{S1}{EOS} more", False, ("text_after_eos",), "4"),
    ("text after eos later line", f"t{R1}{S0}4{S1}{EOS}\nUser: next", False, ("text_after_eos",), "4"),
    ("two eos", f"t{R1}{S0}4{S1}{EOS}{EOS}", False, ("multiple_eos",), "4"),
    ("two different eos", f"t{R1}{S0}4{S1}{EOS}\n<|im_end|>", False, ("multiple_eos",), "4"),
    ("duplicate solution block", f"t{R1}{S0}4{S1}{S0}5{S1}", False, ("duplicate_block",), None),
    ("duplicate reasoning block", f"t{R1}{S0}4{S1}{R0}again{R1}", False, ("duplicate_block",), "4"),
    ("reasoning start after solution", f"t{R1}{S0}4{S1}{R0}", False, ("duplicate_block",), "4"),
    ("eos inside reasoning", f"t{EOS} more{R1}{S0}4{S1}", False, ("eos_before_end",), "4"),
    ("case-changed end tag", f"t<END_WORKING_OUT>{S0}4{S1}", False,
     ("missing_reasoning_end", "tag_case_mismatch"), "4"),
]

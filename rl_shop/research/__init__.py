"""ProductResearch (arXiv 2602.23716): multi-agent synthesis of research trajectories, filtering,
reflective internalization into SFT data, LoRA SFT, and RACE / FACT evaluation. See docs/research.md.

Modules: trajectory (records), user_agent, tools, prompt (the single agent's prompt renderer),
research_agent, supervisor, pipeline (the loop), filtering, internalize, sft_data, sft, fact, race, reference, evaluate, config. Import-light: the
heavy libraries (torch, transformers, trl, peft) load only inside the functions that need them.
"""

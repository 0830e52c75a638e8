"""``python -m rlcore_contrib_http_agent --url ... --tasks N --out episodes.jsonl``."""

from rlcore_contrib_http_agent.agent import main

main()

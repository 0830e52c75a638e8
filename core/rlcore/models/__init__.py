"""The core decoder-only transformer, packed attention, generation and HF I/O."""

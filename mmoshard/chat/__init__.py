"""The chat role: presence, friends and blocks, whispers, parties and channels across processes."""

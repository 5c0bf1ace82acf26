"""The auth role: accounts, logins and refresh tokens, characters, over REST under /v1."""

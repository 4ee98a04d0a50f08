"""The questions llmsizer answers, one module each: ``plan`` (size a job), ``fit`` (what runs on hardware you
have), ``validate`` (published figures vs predictions), ``listing`` (the catalogs). Each takes the question in the
user's terms, returns typed results, and raises field-named errors; ``render/`` and ``cli/`` do the rest."""

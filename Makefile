# Shortcuts for scripts/dev.sh (which works without make, too).
.PHONY: demo test wheel-smoke bench setup
demo:
	bash scripts/dev.sh demo
test:
	bash scripts/dev.sh test
wheel-smoke:
	bash scripts/dev.sh wheel-smoke
bench:
	bash scripts/dev.sh bench
setup:
	bash scripts/dev.sh setup

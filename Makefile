# Shortcuts for scripts/dev.sh (which works without make, too).
.PHONY: demo test bench setup
demo:
	bash scripts/dev.sh demo
test:
	bash scripts/dev.sh test
bench:
	bash scripts/dev.sh bench
setup:
	bash scripts/dev.sh setup

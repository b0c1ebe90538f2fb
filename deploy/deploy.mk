# Deployment commands (included by the Makefile). Compose files live in deploy/.
COMPOSE_BIN ?= $(shell command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 && echo "docker compose")
COMPOSE_FILE ?= deploy/docker-compose.yml
.PHONY: up down logs models validate-deploy env-example

up: ## docker compose up -d (needs MODEL_DIR, NVIDIA GPUs and the Docker compose plugin)
	@test -n "$(MODEL_DIR)" || (echo "set MODEL_DIR=/path/to/models" && exit 2)
	@test -n "$(COMPOSE_BIN)" || (echo "docker compose is not available on this machine" && exit 2)
	MODEL_DIR=$(MODEL_DIR) $(COMPOSE_BIN) -f $(COMPOSE_FILE) up -d --build

down: ## docker compose down
	$(COMPOSE_BIN) -f $(COMPOSE_FILE) down

logs: ## follow the compose logs
	$(COMPOSE_BIN) -f $(COMPOSE_FILE) logs -f

models: install ## download every model + tokenizer + English voices into MODEL_DIR ahead of time
	$(BIN)/python -m vibevoice_api.shared.download --model-dir $(MODEL_DIR)

validate-deploy: install ## offline checks of Dockerfiles, compose files and Kubernetes manifests
	$(BIN)/python -m pytest -q tests/deploy -k "not traefik"

env-example: install ## regenerate .env.example from the settings classes
	$(BIN)/python deploy/tools/gen_env_example.py > .env.example

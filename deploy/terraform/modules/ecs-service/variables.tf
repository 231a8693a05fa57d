variable "name" {
  description = "Service name; also the task definition family, log group /ecs/NAME and role name prefix."
  type        = string
}

variable "cluster_name" {
  description = "Name of the ECS cluster the service runs in."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of that cluster."
  type        = string
}

variable "image" {
  description = "Image of the first task definition revision; later revisions are registered by hoist deploy (see the service's lifecycle)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the one ECR repository the task execution role may pull from."
  type        = string
}

variable "container_name" {
  description = "Name of the container."
  type        = string
}

variable "container_port" {
  description = "Port the container listens on."
  type        = number
}

variable "user" {
  description = "User (uid[:gid]) the container runs as; must not be root."
  type        = string
  default     = "10001"
  validation {
    condition     = !contains(["root", "0"], split(":", var.user)[0])
    error_message = "The container must not run as root."
  }
}

variable "environment" {
  description = "Plain environment variables (not secrets: those go in `secrets`)."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k in keys(var.environment) : length(regexall("(?i)(secret|password|passwd|token|private_?key|api_?key|credential)", k)) == 0])
    error_message = "A variable named like a secret belongs in `secrets` (an SSM parameter or Secrets Manager ARN), not in plain environment."
  }
}

variable "secrets" {
  description = "Secret environment variables: name => ARN of an SSM parameter or a Secrets Manager secret. The execution role may read exactly these."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for arn in values(var.secrets) : can(regex("^arn:[^:]+:(ssm|secretsmanager):", arn))])
    error_message = "Each secret is the ARN of an SSM parameter or a Secrets Manager secret."
  }
}

variable "cpu" {
  description = "Task CPU units."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Task memory (MiB)."
  type        = number
  default     = 512
}

variable "desired_count" {
  description = "Number of tasks."
  type        = number
  default     = 2
}

variable "vpc_id" {
  description = "VPC of the tasks."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks (private ones)."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Whether tasks get public IPs (only for public subnets without NAT)."
  type        = bool
  default     = false
}

variable "egress_cidrs" {
  description = "IPv4 CIDRs tasks may reach on 443 (ECR, CloudWatch Logs, AWS APIs)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "alb_security_group_id" {
  description = "Security group of the load balancer: the only source allowed in, on the container port."
  type        = string
}

variable "target_group_arn" {
  description = "Target group the service registers its tasks in (blue for blue/green)."
  type        = string
}

variable "health_check_grace_period_seconds" {
  description = "Seconds ECS ignores failing load balancer health checks of a new task."
  type        = number
  default     = 30
}

variable "deployment_controller" {
  description = "ECS (rolling update with circuit breaker, driven by hoist deploy) or CODE_DEPLOY (blue/green through CodeDeploy)."
  type        = string
  default     = "ECS"
  validation {
    condition     = contains(["ECS", "CODE_DEPLOY"], var.deployment_controller)
    error_message = "deployment_controller is ECS or CODE_DEPLOY."
  }
}

variable "target_group_names" {
  description = "CODE_DEPLOY only: the blue and green target group names, in that order."
  type        = list(string)
  default     = []
}

variable "target_group_arns" {
  description = "CODE_DEPLOY only: the blue and green target group ARNs (CodeDeploy's role may read them)."
  type        = list(string)
  default     = []
}

variable "prod_listener_arn" {
  description = "CODE_DEPLOY only: the production listener."
  type        = string
  default     = null
}

variable "test_listener_arn" {
  description = "CODE_DEPLOY only: the test listener."
  type        = string
  default     = null
}

variable "codedeploy_config_name" {
  description = "CODE_DEPLOY only: deployment configuration (how traffic shifts)."
  type        = string
  default     = "CodeDeployDefault.ECSAllAtOnce"
}

variable "termination_wait_minutes" {
  description = "CODE_DEPLOY only: minutes the old (blue) tasks keep running after a successful deployment, to roll back to."
  type        = number
  default     = 5
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the container logs."
  type        = number
  default     = 30
}

variable "log_kms_key_arn" {
  description = "KMS key ARN for the log group (null: CloudWatch's own encryption)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

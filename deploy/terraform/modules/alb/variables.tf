variable "name" {
  description = "Name of the load balancer and prefix of its target groups (at most 26 characters)."
  type        = string
  validation {
    condition     = length(var.name) <= 26
    error_message = "Target group names are NAME-blue/NAME-green and may have 32 characters at most."
  }
}

variable "vpc_id" {
  description = "VPC of the load balancer and its targets."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the load balancer (public ones, in at least two availability zones)."
  type        = list(string)
}

variable "internal" {
  description = "Whether the load balancer is internal."
  type        = bool
  default     = false
}

variable "ingress_cidrs" {
  description = "IPv4 CIDRs allowed to reach the listeners on 80 (and 443)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "certificate_arn" {
  description = "ACM certificate ARN. When given, 443 serves HTTPS and 80 redirects to it."
  type        = string
  default     = null
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "target_port" {
  description = "Port the targets (containers) listen on."
  type        = number
}

variable "health_check_path" {
  description = "Path the target groups' health check requests."
  type        = string
  default     = "/health"
}

variable "blue_green" {
  description = "Whether to make two target groups (blue, green) and a test listener, for CodeDeploy blue/green deployments."
  type        = bool
  default     = false
}

variable "test_listener_port" {
  description = "Port of the test listener (blue/green only)."
  type        = number
  default     = 9000
}

variable "test_listener_cidrs" {
  description = "IPv4 CIDRs allowed to reach the test listener (blue/green only). Empty: none."
  type        = list(string)
  default     = []
}

variable "deregistration_delay" {
  description = "Seconds a draining target keeps its connections."
  type        = number
  default     = 30
}

variable "enable_deletion_protection" {
  description = "Whether the load balancer refuses deletion."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

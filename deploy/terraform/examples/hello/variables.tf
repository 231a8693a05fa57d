variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "image" {
  description = "Image of the first task definition revision of both services, e.g. ACCOUNT.dkr.ecr.REGION.amazonaws.com/hello:0.1.0 (push it after the repository exists, then hoist deploy later ones)."
  type        = string
}

variable "create_vpc" {
  description = "Whether to make a VPC with the network module; when false, pass vpc_id and the subnet IDs."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "Existing VPC (create_vpc = false)."
  type        = string
  default     = null
}

variable "public_subnet_ids" {
  description = "Existing public subnets for the load balancers (create_vpc = false)."
  type        = list(string)
  default     = []
}

variable "private_subnet_ids" {
  description = "Existing private subnets for the tasks (create_vpc = false)."
  type        = list(string)
  default     = []
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS on both load balancers (null: HTTP on 80 only)."
  type        = string
  default     = null
}

variable "desired_count" {
  description = "Tasks per service."
  type        = number
  default     = 2
}

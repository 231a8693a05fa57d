variable "name" {
  description = "Name prefix for the VPC and its parts."
  type        = string
}

variable "cidr" {
  description = "VPC CIDR block; subnets are /20s carved from it (public first, then private)."
  type        = string
  default     = "10.0.0.0/16"
}

variable "azs" {
  description = "Availability zones to use (at least 2). Empty: the region's first two."
  type        = list(string)
  default     = []
}

variable "nat_gateway" {
  description = "Whether private subnets reach the internet (ECR, CloudWatch Logs) through one NAT gateway."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Repository name."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key ARN that encrypts the repository. When null, the module creates a key with rotation on."
  type        = string
  default     = null
}

variable "keep_last" {
  description = "How many images to keep; older ones expire."
  type        = number
  default     = 30
}

variable "untagged_expiry_days" {
  description = "Days after which untagged images expire."
  type        = number
  default     = 7
}

variable "force_delete" {
  description = "Whether destroy deletes the repository even when it holds images."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

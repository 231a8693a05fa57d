output "repository_name" {
  description = "Repository name."
  value       = aws_ecr_repository.this.name
}

output "repository_arn" {
  description = "Repository ARN (for pull permissions)."
  value       = aws_ecr_repository.this.arn
}

output "repository_url" {
  description = "Repository URL, ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME."
  value       = aws_ecr_repository.this.repository_url
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the repository."
  value       = local.kms_key_arn
}

output "service_name" {
  description = "Service name."
  value       = var.name
}

output "service_arn" {
  description = "Service ARN."
  value       = local.service_id
}

output "task_definition_arn" {
  description = "ARN of the task definition revision Terraform registered (hoist deploy registers later ones)."
  value       = aws_ecs_task_definition.this.arn
}

output "task_definition_family" {
  description = "Task definition family."
  value       = aws_ecs_task_definition.this.family
}

output "container_name" {
  description = "Name of the service's container."
  value       = var.container_name
}

output "container_port" {
  description = "Port of the service's container."
  value       = var.container_port
}

output "log_group_name" {
  description = "CloudWatch log group of the container."
  value       = aws_cloudwatch_log_group.this.name
}

output "security_group_id" {
  description = "Security group of the tasks."
  value       = aws_security_group.service.id
}

output "execution_role_arn" {
  description = "Task execution role ARN."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "Task role ARN."
  value       = aws_iam_role.task.arn
}

output "task_role_name" {
  description = "Task role name, to attach the application's own policies to."
  value       = aws_iam_role.task.name
}

output "codedeploy_app_name" {
  description = "CodeDeploy application name (CODE_DEPLOY only, else null)."
  value       = one(aws_codedeploy_app.this[*].name)
}

output "codedeploy_deployment_group_name" {
  description = "CodeDeploy deployment group name (CODE_DEPLOY only, else null)."
  value       = one(aws_codedeploy_deployment_group.this[*].deployment_group_name)
}
